"""``regionctl aws check``: a read-only look at everything the settings name, one finding per thing with why.

Nothing here changes AWS. Every finding is a ``Finding(what, ok, reason)``; one that could not be read is not ok
(with the error AWS gave), never skipped: a readiness check that passes because it saw nothing is worse than none.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from regionctl.config import Settings
from regionctl.errors import RegionctlError
from regionctl.providers.aws.application import Finding, RegionReadiness
from regionctl.providers.aws.arc import CONTROL_PLANE_REGION, ArcRouting
from regionctl.providers.aws.aurora import AuroraDatabases, cluster_id
from regionctl.providers.aws.clients import ClientFactory, describe
from regionctl.providers.aws.policy import grants
from regionctl.providers.aws.restore import ENGINE
from regionctl.routing.model import AT_LEAST_ONE_REGION_RULE

IAM_REGION = "us-east-1"


def _guarded(what: str, read: Callable[[], list[Finding]]) -> list[Finding]:
    try:
        return read()
    except RegionctlError as exc:
        return [Finding(what, False, str(exc))]
    except Exception as exc:  # an SDK error we did not translate: still a finding, never a crash
        return [Finding(what, False, describe(exc))]


class ReadinessCheck:
    def __init__(self, settings: Settings, factory: ClientFactory) -> None:
        if settings.aws is None:
            raise RegionctlError("provider 'aws' needs [aws] settings")
        self.settings = settings
        self.aws = settings.aws
        self.factory = factory
        self.routing = ArcRouting(settings, factory)
        self.databases = AuroraDatabases(settings, factory)

    def run(self) -> list[Finding]:
        found = _guarded("ARC routing controls", self.routing_findings)
        found += _guarded("ARC safety rules", self.safety_rule_findings)
        for database in self.aws.databases:
            found += _guarded(f"global database {database}", functools.partial(self.database_findings, database))
        readiness = RegionReadiness(self.aws, self.factory)
        for region in self.settings.regions:
            found += _guarded(f"application in {region}", functools.partial(readiness.findings, region))
        found += _guarded("IAM permissions", self.iam_findings)
        return found

    def routing_findings(self) -> list[Finding]:
        endpoints = self.routing.endpoints()
        found = [Finding("ARC cluster endpoints", True, ", ".join(region for region, _ in endpoints))]
        states = self.routing.states()
        for region, state in states.items():
            found.append(Finding(f"routing control {region}", True, state))
        on = [r for r, s in states.items() if s == "On"]
        found.append(Finding(f"rule {AT_LEAST_ONE_REGION_RULE}", bool(on),
                             f"On: {', '.join(on)}" if on else "every region is Off: no region takes users"))
        return found

    def safety_rule_findings(self) -> list[Finding]:
        client = self.factory("route53-recovery-control-config", CONTROL_PLANE_REGION)
        found = []
        for name, arn in self.aws.safety_rules.items():
            try:
                rule = client.describe_safety_rule(SafetyRuleArn=arn)
            except Exception as exc:
                found.append(Finding(f"ARC safety rule {name}", False, describe(exc)))
                continue
            body = rule.get("AssertionRule") or rule.get("GatingRule") or {}
            found.append(Finding(f"ARC safety rule {name}", body.get("Status") == "DEPLOYED",
                                 f"{'assertion' if 'AssertionRule' in rule else 'gating'} rule, "
                                 f"{body.get('Status', '?')}, wait period {body.get('WaitPeriodMs', '?')} ms"))
        return found

    def database_findings(self, database: str) -> list[Finding]:
        view = self.databases.view(database)
        db = self.aws.databases[database]
        what = f"global database {database}"
        found = [Finding(f"{what} engine", view.engine == ENGINE,
                         view.engine if view.engine == ENGINE else f"{view.engine}: the reconciliation reads "
                         f"{ENGINE} only (routing and promotions work)")]
        if view.failover is not None:
            found.append(Finding(f"{what} promotion", False, f"{view.failover.status} to {view.failover.to_region}"))
        found.append(Finding(f"{what} writer", view.writer is not None, view.writer or "no member writes"))
        for region, arn in db.clusters.items():
            member = view.members.get(region)
            if member is None:
                found.append(Finding(f"{what} member {region}", False,
                                     f"{cluster_id(arn)} is not a member of {db.global_cluster_id}"))
                continue
            sync = member.get("SynchronizationStatus", "connected")
            ok = bool(member.get("IsWriter")) or sync == "connected"
            found.append(Finding(f"{what} member {region}", ok,
                                 "writer" if member.get("IsWriter") else f"secondary, {sync}"))
            found.append(Finding(f"{what} connection string {region}", bool(db.dsn.get(region)),
                                 "set" if db.dsn.get(region) else "not set: a report with this region as the new "
                                 "writer cannot read it"))
        return found

    def iam_findings(self) -> list[Finding]:
        """Simulate the needed actions for the caller's own role (needs iam:SimulatePrincipalPolicy)."""
        caller = self.factory("sts", IAM_REGION).get_caller_identity()["Arn"]
        principal = _principal(caller)
        iam = self.factory("iam", IAM_REGION)
        found = []
        for grant in grants(self.aws):
            answer: dict[str, Any] = iam.simulate_principal_policy(
                PolicySourceArn=principal, ActionNames=list(grant.actions), ResourceArns=list(grant.resources))
            denied = sorted({r["EvalActionName"] for r in answer.get("EvaluationResults", [])
                             if r.get("EvalDecision") != "allowed"})
            found.append(Finding(f"IAM: {grant.why}", not denied,
                                 f"denied {', '.join(denied)}" if denied else f"{len(grant.actions)} actions allowed"))
        return found


def _principal(caller_arn: str) -> str:
    """An assumed role's session ARN -> the role's ARN (what the IAM simulator takes)."""
    parts = caller_arn.split(":")
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role = parts[5].split("/")[1]
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{role}"
    return caller_arn
