"""Export every task definition to JSON and import such a file back, all or nothing.

The file is ``{"version": 1, "tasks": [...]}``. Each entry holds exactly the fields
:func:`chime.schemas.task.validate_task` accepts, with instants as ISO-8601 (with offset) and
``depends_on`` as a list of task NAMES, so a file can be imported into an empty database.

An import first checks every entry the way the API does (``validate_task``), plus what only a
whole file can get wrong (duplicate names, unknown or cyclic dependencies, names already taken),
and reports every problem at once. Only a clean file is applied: parents before children, each
entry through :mod:`chime.services` like an API call, all in ONE transaction (the caller's unit of
work, :mod:`chime.unit_of_work`; each created or updated task leaves one audit event saying
``{"via": "import"}``): if an entry fails (another writer took a name meanwhile, say),
nothing of the file is kept, and Redis is only touched once the whole file is committed.
"""
from __future__ import annotations

import heapq
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from chime import services
from chime.errors import ChimeError, ValidationError
from chime.extensions import db
from chime.models import Task
from chime.schemas.task import MAX_DEPENDENCIES, TaskInput, task_to_dict, validate_task

FORMAT_VERSION = 1
IMPORT_DETAILS = {"via": "import"}  # what an imported task's create/update audit event says of its origin
EXPORT_FIELDS = tuple(TaskInput.model_fields)  # what a task's input is, in the schema's (the API's) order


class TransferError(Exception):
    """The file as a whole cannot be read (not JSON, wrong shape, unknown version)."""


@dataclass
class Problem:
    """What is wrong with one entry of the file."""

    index: int
    name: str | None
    fields: dict[str, str]

    def describe(self) -> str:
        label = f"entry {self.index}" + (f" ({self.name!r})" if self.name is not None else "")
        reasons = "; ".join(f"{key}: {reason}" for key, reason in sorted(self.fields.items()))
        return f"{label}: {reasons}"


class ImportRejected(Exception):
    """One or more entries are invalid; nothing was imported."""

    def __init__(self, problems: list[Problem], total: int) -> None:
        self.problems = sorted(problems, key=lambda p: p.index)
        self.total = total
        lines = [f"{len(self.problems)} of {total} entries are invalid; nothing was imported:"]
        lines += ["  " + problem.describe() for problem in self.problems]
        super().__init__("\n".join(lines))


class ImportFailed(Exception):
    """Applying a checked file failed at one entry; the caller's unit of work rolls back the whole file."""


@dataclass
class Entry:
    """One checked entry of the file."""

    index: int
    name: str
    payload: dict[str, Any]          # the entry as given, without depends_on
    depends_on: list[str]
    existing: Task | None = None     # the task of the same name, when updating


@dataclass
class Outcome:
    """What happened to one entry: 'created', 'updated' or 'unchanged' (or would, in a dry run)."""

    action: str
    name: str
    task_id: int | None


# -- export -------------------------------------------------------------------------------

def export_tasks() -> dict[str, Any]:
    """Return the export document: every task's writable fields, parents before children."""
    tasks = db.session.scalars(select(Task).options(selectinload(Task.parents)).order_by(Task.id)).all()
    parents = {task.name: sorted(parent.name for parent in task.parents) for task in tasks}
    by_name = {task.name: task for task in tasks}
    order = dependency_order(parents)
    order += sorted(set(by_name) - set(order))  # a cycle cannot be stored, but never drop a task
    return {"version": FORMAT_VERSION, "tasks": [export_entry(by_name[name]) for name in order]}


def export_entry(task: Task) -> dict[str, Any]:
    """Return one task as an import entry (depends_on by name)."""
    shown = task_to_dict(task)
    entry = {key: shown[key] for key in EXPORT_FIELDS}
    entry["depends_on"] = sorted(parent.name for parent in task.parents)
    return entry


def dump(document: Mapping[str, Any]) -> str:
    """Serialise an export document as stable, readable JSON."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def replace_file(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` all or nothing: a temporary file in the same directory, then os.replace.

    If anything fails the file at ``path`` is left exactly as it was and the temporary file is removed.
    A new file gets the usual permissions (0666 less the umask), a replaced one keeps its own.
    """
    target = os.path.realpath(path)
    descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=f".{os.path.basename(target)}.",
                                             suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, _mode_for(target))
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _mode_for(target: str) -> int:
    """The permission bits a written file gets: the existing file's, else 0666 less the umask."""
    try:
        return os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def dependency_order(parents: Mapping[str, Iterable[str]], rank: Mapping[str, Any] | None = None) -> list[str]:
    """Order names parents first (ties by `rank`, else by name); names in a cycle are left out."""
    rank = rank or {name: name for name in parents}
    children: dict[str, list[str]] = {name: [] for name in parents}
    waiting: dict[str, int] = {}
    for name, names in parents.items():
        inside = {p for p in names if p in parents}
        waiting[name] = len(inside)
        for parent in inside:
            children[parent].append(name)
    ready = [(rank[name], name) for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for child in children[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (rank[child], child))
    return order


# -- import: reading and checking ------------------------------------------------------------

def load_document(raw: bytes | str) -> list[Any]:
    """Parse the file and return its list of entries, or raise TransferError."""
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as error:
        raise TransferError(f"The file is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})") \
            from None
    except (UnicodeDecodeError, RecursionError, ValueError) as error:
        raise TransferError(f"The file is not valid JSON: {error}") from None
    if not isinstance(document, dict) or "tasks" not in document:
        raise TransferError('The file must be a JSON object like {"version": 1, "tasks": [...]}')
    version = document.get("version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise TransferError(f"Unsupported file version {version!r}; this Chime reads version {FORMAT_VERSION}")
    unknown = sorted(str(key) for key in document if key not in ("version", "tasks"))
    if unknown:
        raise TransferError("Unknown top-level keys: " + ", ".join(unknown))
    if not isinstance(document["tasks"], list):
        raise TransferError('"tasks" must be a list')
    return document["tasks"]


def check_entries(raw_entries: list[Any], *, allow_shell: bool, update: bool) -> list[Entry]:
    """Check every entry; return them in the order to apply, or raise ImportRejected listing every problem."""
    existing = {task.name: task for task in
                db.session.scalars(select(Task).options(selectinload(Task.parents))).all()}
    problems = Problems()
    entries, unusable_names = read_entries(raw_entries, allow_shell, problems)
    check_names_free(entries, existing, update, problems)
    check_parents_known(entries, unusable_names | {entry.name for entry in entries}, existing, problems)
    check_no_cycle(entries, existing, problems)
    if problems:
        raise ImportRejected(problems.listed(), len(raw_entries))
    order = dependency_order({e.name: e.depends_on for e in entries}, {e.name: e.index for e in entries})
    by_name = {entry.name: entry for entry in entries}
    return [by_name[name] for name in order]


class Problems:
    """The problems found so far, one Problem per entry, each field's reasons joined."""

    def __init__(self) -> None:
        self.by_index: dict[int, Problem] = {}

    def __bool__(self) -> bool:
        return bool(self.by_index)

    def report(self, index: int, name: str | None, key: str, reason: str) -> None:
        fields = self.by_index.setdefault(index, Problem(index, name, {})).fields
        if key not in fields:
            fields[key] = reason
        elif reason not in fields[key]:
            fields[key] += "; " + reason

    def listed(self) -> list[Problem]:
        return list(self.by_index.values())


def read_entries(raw_entries: list[Any], allow_shell: bool, problems: Problems) -> tuple[list[Entry], set[str]]:
    """Validate each entry alone and refuse a name given twice; return the usable entries and the
    names of the unusable ones (reported already: their dependents need no second error)."""
    entries: list[Entry] = []
    first_index: dict[str, int] = {}
    unusable_names: set[str] = set()
    for index, raw in enumerate(raw_entries):
        entry = _check_one(index, raw, allow_shell, problems)
        if entry is None:
            if (label := _label(raw)) is not None:
                unusable_names.add(label)
        elif entry.name in first_index:
            problems.report(index, entry.name, "name", f"duplicate: entry {first_index[entry.name]} has the same name")
        else:
            first_index[entry.name] = index
            entries.append(entry)
    return entries, unusable_names


def check_names_free(entries: list[Entry], existing: Mapping[str, Task], update: bool, problems: Problems) -> None:
    """Link each entry to the task of its name; without --update such an entry is a problem."""
    for entry in entries:
        entry.existing = existing.get(entry.name)
        if entry.existing is not None and not update:
            problems.report(entry.index, entry.name, "name",
                            f"a task with this name already exists (id {entry.existing.id}); use --update to update it")


def check_parents_known(entries: list[Entry], in_file: set[str], existing: Mapping[str, Task],
                        problems: Problems) -> None:
    """Every parent named must be another entry of the file or a task of the database."""
    for entry in entries:
        if entry.name in entry.depends_on:
            problems.report(entry.index, entry.name, "depends_on", "a task cannot depend on itself")
        for parent in entry.depends_on:
            if parent != entry.name and parent not in in_file and parent not in existing:
                problems.report(entry.index, entry.name, "depends_on",
                                f"no task named {parent!r} in the file or the database")


def check_no_cycle(entries: list[Entry], existing: Mapping[str, Task], problems: Problems) -> None:
    """The file's dependencies together with the database's must form no cycle."""
    graph = {name: [p.name for p in task.parents] for name, task in existing.items()}
    graph.update({entry.name: [p for p in entry.depends_on if p != entry.name] for entry in entries})
    index_of = {entry.name: entry.index for entry in entries}
    for cycle in find_cycles(graph):
        path = " -> ".join(cycle + [cycle[0]])
        for name in cycle:
            if name in index_of:
                problems.report(index_of[name], name, "depends_on",
                                f"dependency cycle: {path} (-> means 'depends on')")


def _check_one(index: int, raw: Any, allow_shell: bool, problems: Problems) -> Entry | None:
    """Validate one entry like the API does; depends_on (names here) is checked apart."""
    if not isinstance(raw, Mapping):
        problems.report(index, None, "entry", "must be a JSON object")
        return None
    payload = {key: value for key, value in raw.items() if key != "depends_on"}
    label = _label(raw)
    depends_on, depends_error = _parent_names(raw.get("depends_on"))
    if depends_error:
        problems.report(index, label, "depends_on", depends_error)
    try:
        clean = validate_task(payload, allow_shell=allow_shell)
    except ValidationError as error:
        for key, reason in (error.fields or {}).items():
            problems.report(index, label, key, reason)
        return None
    if depends_error:
        return None
    return Entry(index=index, name=clean["name"], payload=payload, depends_on=depends_on)


def _label(raw: Any) -> str | None:
    """Return an entry's name for messages, when it has a usable one."""
    name = raw.get("name") if isinstance(raw, Mapping) else None
    return name.strip() if isinstance(name, str) and name.strip() else None


def _parent_names(value: Any) -> tuple[list[str], str | None]:
    if value is None:
        return [], None
    if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
        return [], "must be a list of task names"
    if len(value) > MAX_DEPENDENCIES:
        return [], f"must list at most {MAX_DEPENDENCIES} tasks"
    return sorted({v.strip() for v in value}), None


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Return the dependency cycles of a {name: parent names} graph, each once (unknown names ignored)."""
    parents = {name: sorted(p for p in names if p in graph) for name, names in graph.items()}
    acyclic = set(dependency_order(parents))
    left = {name: [p for p in names if p not in acyclic] for name, names in parents.items() if name not in acyclic}
    cycles: list[list[str]] = []
    done: set[str] = set()
    for start in sorted(left):
        path: list[str] = []
        position: dict[str, int] = {}
        node = start
        while node not in position and node not in done:
            position[node] = len(path)
            path.append(node)
            node = left[node][0]  # every name left over waits on a parent that is left over too
        if node in position:
            cycles.append(path[position[node]:])
        done.update(path)
    return cycles


# -- import: applying ----------------------------------------------------------------------

def plan(entries: list[Entry], *, allow_shell: bool) -> list[Outcome]:
    """Say what applying checked entries would do, without changing anything."""
    ids = {name: task_id for name, task_id in db.session.execute(select(Task.name, Task.id))}
    outcomes = []
    for entry in entries:
        if entry.existing is None:
            outcomes.append(Outcome("created", entry.name, None))
        else:
            same = _unchanged(entry, entry.existing, ids, allow_shell)
            outcomes.append(Outcome("unchanged" if same else "updated", entry.name, entry.existing.id))
    return outcomes


def apply(entries: list[Entry], *, allow_shell: bool) -> list[Outcome]:
    """Create or update the checked entries in order through the services, in the caller's unit of work.

    Nothing here commits: the caller commits once, so the whole file is applied or, when an entry
    fails (another writer took a name meanwhile, say), nothing is -- and Redis is not touched.
    """
    ids = {name: task_id for name, task_id in db.session.execute(select(Task.name, Task.id))}
    outcomes: list[Outcome] = []
    for entry in entries:
        try:
            outcomes.append(_apply_one(entry, ids, allow_shell))
        except ChimeError as error:
            raise ImportFailed(f"Import failed at entry {entry.index} ({entry.name!r}): {error.message}; "
                               "nothing was imported") from error
    return outcomes


def _apply_one(entry: Entry, ids: dict[str, int], allow_shell: bool) -> Outcome:
    payload = {**entry.payload, "depends_on": [ids[name] for name in entry.depends_on]}
    task = db.session.get(Task, entry.existing.id) if entry.existing is not None else None
    if task is None:
        task = services.create_task(payload, allow_shell=allow_shell, audit_details=IMPORT_DETAILS)
        ids[task.name] = task.id
        return Outcome("created", task.name, task.id)
    if _unchanged(entry, task, ids, allow_shell):
        return Outcome("unchanged", task.name, task.id)
    services.update_task(task, payload, partial=False, allow_shell=allow_shell, audit_details=IMPORT_DETAILS)
    return Outcome("updated", task.name, task.id)


def _unchanged(entry: Entry, task: Task, ids: Mapping[str, int], allow_shell: bool) -> bool:
    if any(name not in ids for name in entry.depends_on):
        return False
    wanted = validate_task({**entry.payload, "depends_on": [ids[name] for name in entry.depends_on]},
                           allow_shell=allow_shell)
    return wanted == services.current_fields(task)
