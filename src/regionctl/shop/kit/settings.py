"""Service settings from environment variables, validated once at start and refused with the variable's name."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from regionctl.config import REGION_PATTERN
from regionctl.errors import ConfigError

ENV_NAMES = {
    "region": "REGION",
    "host": "HOST",
    "port": "PORT",
    "worker_port": "WORKER_PORT",
    "endpoints_catalog": "ENDPOINTS_CATALOG",
    "endpoints_carts": "ENDPOINTS_CARTS",
    "endpoints_checkout": "ENDPOINTS_CHECKOUT",
    "endpoints_orders": "ENDPOINTS_ORDERS",
    "endpoints_assets": "ENDPOINTS_ASSETS",
    "orders_writer_dsn": "ORDERS_WRITER_DSN",
    "orders_reader_dsn": "ORDERS_READER_DSN",
    "catalog_writer_dsn": "CATALOG_WRITER_DSN",
    "catalog_reader_dsn": "CATALOG_READER_DSN",
    "regional_dsn": "REGIONAL_DSN",
    "order_events_endpoint": "ORDER_EVENTS_ENDPOINT",
}


class ServiceSettings(BaseSettings):
    """Everything a shop service reads from its environment (names as in the reference where it had them)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    region: str = Field(description="the region this process serves, e.g. us-east-1")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    worker_port: int | None = Field(None, ge=1, le=65535,
                                    description="set when this process is one of several sharing PORT (SO_REUSEPORT): "
                                    "its own port, for health and metrics")
    log_level: str = "INFO"
    endpoints_catalog: str | None = None
    endpoints_carts: str | None = None
    endpoints_checkout: str | None = None
    endpoints_orders: str | None = None
    endpoints_assets: str | None = None
    orders_writer_dsn: SecretStr | None = None
    orders_reader_dsn: SecretStr | None = None
    catalog_writer_dsn: SecretStr | None = None
    catalog_reader_dsn: SecretStr | None = None
    regional_dsn: SecretStr | None = None
    regional_store_impl: str = "regionctl.regionalstore:RegionalStore"
    order_events_endpoint: str | None = None
    retail_ui_banner: str = ""
    shipping_name_prefix: str = ""
    db_connect_timeout_s: float = Field(2.0, gt=0, le=60)
    db_retry_deadline_s: float = Field(8.0, gt=0, le=300)
    db_op_timeout_s: float = Field(5.0, gt=0, le=300)
    outbox_interval_s: float = Field(0.5, gt=0, le=60)
    http_timeout_s: float = Field(10.0, gt=0, le=300)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not REGION_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a region name like us-east-1")
        return value

    @field_validator("endpoints_catalog", "endpoints_carts", "endpoints_checkout", "endpoints_orders",
                     "endpoints_assets", "order_events_endpoint")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value in (None, "", "false"):  # the reference's "false" meant "not configured"
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _worker_port_of_its_own(self) -> ServiceSettings:
        if self.worker_port == self.port:
            raise ValueError(f"WORKER_PORT {self.worker_port} is PORT itself; a worker's own port must differ")
        return self

    def endpoint(self, service: str) -> str:
        """The base URL of ``service`` in this region, or ConfigError naming the variable to set."""
        value = getattr(self, f"endpoints_{service}")
        if value is None:
            raise ConfigError(f"{ENV_NAMES[f'endpoints_{service}']} is not set; the {service} URL is required")
        return str(value)

    def dsn(self, field: str) -> str:
        """A DSN by field name, or ConfigError naming the environment variable to set."""
        value = getattr(self, field)
        if value is None or not value.get_secret_value().strip():
            raise ConfigError(f"{ENV_NAMES[field]} is not set; this service needs that database")
        return str(value.get_secret_value())

    @property
    def self_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def load_service_settings(**overrides: Any) -> ServiceSettings:
    """Settings from the environment (plus overrides), or ConfigError naming every bad variable."""
    try:
        return ServiceSettings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "settings"
            problems.append(f"{ENV_NAMES.get(field, field.upper())}: {err['msg']}")
        raise ConfigError("invalid service settings: " + "; ".join(problems)) from None
