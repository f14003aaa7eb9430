"""What the API shows of the audit trail: one event (who, when, from where, what changed)."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from chime.audit import MASK, masked
from chime.enums import Source
from chime.schemas.common import Instant, Sent

# Masked again on the way out: an event written before a field name counted as secret shows it masked too.
Values = Annotated[dict[str, Any] | None, BeforeValidator(masked), Field(json_schema_extra={"nullable": True})]


class AuditEventRead(Sent):
    """One change to a task, channel, user or token, or one operator action."""

    id: int = Field(ge=1)
    created_at: Instant = Field(description="When it happened (the since/until filters apply to it)")
    actor_id: int | None = Field(ge=1, description="The user who acted; null for the CLI, the engine, an "
                                                   "API_TOKENS token, or once the user is deleted")
    actor_name: str = Field(description="Who acted, as recorded then: a user name (with the token it used), "
                                        "`cli:<login>` for the command line, `chime` for the engine")
    source: Source = Field(description="From where: the admin pages, the API, the CLI or the engine itself")
    remote_addr: str | None = Field(description="The client's address (admin and API)")
    action: str = Field(description="What was done: create, update, delete, enable, disable, run_now, pause, ...")
    object_type: str = Field(description="task, execution, user, token or channel")
    object_id: str | None = Field(description="The object's id, as text")
    object_name: str = Field(description="The object's name then (kept after it is deleted)")
    before: Values = Field(description=f"For a change: the changed fields before it (secrets shown as {MASK})")
    after: Values = Field(description=f"For a change: the changed fields after it (secrets shown as {MASK})")
    details: Values = Field(description="What else the action says (the queued job id, how a task came: import)")
