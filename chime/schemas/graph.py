"""What the API shows of the dependency graph: the tasks, each with its latest outcome, and which
task waits for which."""
from __future__ import annotations

from pydantic import Field

from chime.models import Status
from chime.schemas.common import Instant, Sent


class GraphNode(Sent):
    id: int = Field(ge=1)
    name: str
    enabled: bool
    last_status: Status | None = Field(description="The outcome of the task's latest run; null before its first")
    last_run_at: Instant | None


class GraphEdge(Sent):
    parent_id: int = Field(ge=1, description="The task that must succeed first")
    child_id: int = Field(ge=1, description="The task that depends on it")


class TaskGraphRead(Sent):
    """Tasks and their dependencies; `nodes` holds at most `limit` tasks (by id), `edges` the
    dependencies between two of them."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]
    total: int = Field(ge=0, description="Tasks asked for: those with a parent or a child (all with isolated=true)")
    isolated: int = Field(ge=0, description="Tasks with neither parents nor children")
    truncated: bool = Field(description="True when `nodes` holds fewer than `total` tasks (raise `limit`, up "
                                        "to its maximum)")
