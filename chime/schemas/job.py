"""What GET /api/jobs/ shows of the registered jobs (jobs.registry)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from chime.schemas.common import Sent
from jobs.registry import PARAMETER_TYPES


class JobParameter(Sent):
    name: str
    type: Literal[PARAMETER_TYPES]  # type: ignore[valid-type]
    required: bool
    default: Any = Field(description="Default value (null when required)", json_schema_extra={"nullable": True})
    nullable: bool


class JobRead(Sent):
    name: str
    description: str
    parameters: list[JobParameter]
