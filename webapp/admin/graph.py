"""The dependency graph page: tasks in layers by depth, each with its parents and latest outcome."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from flask import render_template, request
from sqlalchemy import Row

from chime.enums import Role
from webapp import queries
from webapp.admin.blueprint import bp
from webapp.arguments import QueryArgs
from webapp.auth import allow


@dataclass
class Card:
    """One task on the page: its row and the tasks it waits for (those shown on the page)."""

    node: Row
    parents: list[Row] = field(default_factory=list)
    children: int = 0


@bp.get("/tasks/graph")
@allow(Role.VIEWER)
def dependency_graph() -> Any:
    include_isolated = bool(QueryArgs(request.args, strict=False).boolean("isolated"))
    graph = queries.task_graph(include_isolated=include_isolated)
    return render_template("tasks/graph.html", graph=graph, layers=layers(graph), include_isolated=include_isolated)


def layers(graph: queries.TaskGraph) -> list[list[Card]]:
    """The graph's tasks by depth: first those without a (shown) parent, then each task one layer
    below its deepest parent. A task on a cycle (the API refuses one; this guards old data) goes last."""
    cards = {node.id: Card(node) for node in graph.nodes}
    children_of: dict[int, list[int]] = defaultdict(list)
    waiting = {task_id: 0 for task_id in cards}
    for parent_id, child_id in graph.edges:
        cards[child_id].parents.append(cards[parent_id].node)
        cards[parent_id].children += 1
        children_of[parent_id].append(child_id)
        waiting[child_id] += 1
    depth = {task_id: 0 for task_id in cards}
    ready = [task_id for task_id, count in waiting.items() if count == 0]
    while ready:
        task_id = ready.pop()
        for child_id in children_of[task_id]:
            depth[child_id] = max(depth[child_id], depth[task_id] + 1)
            waiting[child_id] -= 1
            if waiting[child_id] == 0:
                ready.append(child_id)
    deepest = max(depth.values(), default=0)
    for task_id, count in waiting.items():
        if count:
            depth[task_id] = deepest + 1
    result: list[list[Card]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for task_id, card in cards.items():
        result[depth[task_id]].append(card)
    return result
