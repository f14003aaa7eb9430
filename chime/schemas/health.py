"""What the health routes report (webapp.readiness builds it): liveness, readiness, the whole service."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from chime.policy import SCHEDULER_STALE_AFTER_SECONDS
from chime.schemas.common import Sent

REASONS = "The components that are not `ok`, empty when the status is `ok`"
CheckResult = Annotated[str, Field(pattern=r"^(ok|error: .+)$", description="`ok` or `error: <kind>`")]


class Liveness(Sent):
    status: Literal["ok"]


class Readiness(Sent):
    """This web instance can serve: its database and Redis answer."""

    status: Literal["ok", "unavailable"]
    reasons: list[Literal["database", "redis"]] = Field(description=REASONS)
    database: CheckResult
    redis: CheckResult


class Health(Readiness):
    """The whole service: readiness, a dispatching scheduler and a registered worker."""

    reasons: list[Literal["database", "redis", "scheduler", "workers"]] = Field(description=REASONS)  # type: ignore[assignment]
    scheduler: Literal["ok", "missing", "stale", "unknown"] = Field(description=(
        f"`ok`: the scheduler holding the lock beat within the last {SCHEDULER_STALE_AFTER_SECONDS} s; "
        "`stale`: its last beat is older; `missing`: no lock holder beat (none running, or a standby not yet "
        "taken over); `unknown`: Redis is unreachable"))
    workers: Literal["ok", "none", "unknown"] = Field(description=(
        "`ok`: at least one RQ worker is registered; `none`; `unknown`: Redis is unreachable"))
    scheduler_heartbeat_age_seconds: float | None = Field(ge=0, description=(
        "Seconds since the lock holder's last heartbeat; null when none beat or Redis is unreachable"))
    worker_count: int | None = Field(ge=0, description="Registered RQ workers; null when Redis is unreachable")
