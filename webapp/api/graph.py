"""Route for the dependency graph."""
from __future__ import annotations

from typing import Any

from flask import jsonify

from chime.enums import Role
from chime.schemas.graph import TaskGraphRead
from webapp import queries
from webapp.api.blueprint import bp
from webapp.api.common import query_args
from webapp.auth import allow


@bp.get("/tasks/graph/")
@allow(Role.VIEWER)
def task_graph() -> Any:
    args = query_args()
    graph = queries.task_graph(include_isolated=bool(args.boolean("isolated")),
                               limit=args.integer("limit", queries.MAX_GRAPH_NODES, 1, queries.MAX_GRAPH_NODES) or 1)
    return jsonify(TaskGraphRead.of(
        nodes=graph.nodes, edges=[{"parent_id": parent, "child_id": child} for parent, child in graph.edges],
        total=graph.total, isolated=graph.isolated, truncated=graph.truncated))
