"""One module owns Redis: every key name is in chime.redis_keys, every Lua script in chime.redis_scripts,
and a script touches only the keys it is handed in KEYS."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import CanceledJobRegistry, FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq_scheduler import Scheduler

from chime import redis_keys, redis_scripts

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ("chime", "scheduler", "webapp", "jobs")
SCRIPTS = {name: text for name, text in vars(redis_scripts).items() if name.endswith("_LUA")}
# redis.call('COMMAND', first argument, second argument ...
CALL = re.compile(r"redis\.call\(\s*'(?P<command>\w+)'(?P<args>(?:\s*,\s*[^,()]+(?:\([^()]*\))?[^,()]*)*)")
KEYLESS_COMMANDS = {"TIME"}
TWO_KEY_COMMANDS = {"COPY"}  # COPY source destination


# name = value, not name == value / name ~= value; a value ends at ';', a line end or 'end'
ASSIGNMENT = re.compile(r"\b([A-Za-z_]\w*)\s*(?<![~=<>])=(?!=)\s*(.+?)\s*(?=;|\n|\bend\b|$)")
DECLARED_KEY = re.compile(r"KEYS\[[^\]]+\]")


def product_files() -> list[Path]:
    return sorted(p for package in PRODUCT_PACKAGES for p in (ROOT / package).rglob("*.py"))


def key_arguments(script: str) -> list[tuple[str, str]]:
    """(command, argument) for every argument of a redis.call that Redis reads as a key name."""
    found = []
    for call in CALL.finditer(script):
        command = call["command"].upper()
        args = [a.strip() for a in call["args"].split(",") if a.strip()]
        if command not in KEYLESS_COMMANDS:
            found += [(command, arg) for arg in args[:2 if command in TWO_KEY_COMMANDS else 1]]
    return found


def test_there_are_scripts_to_check() -> None:
    assert {"MOVE_DUE_LUA", "REPLACE_PENDING_LUA", "PUSH_NOW_LUA", "REQUEUE_ABANDONED_LUA", "PUSH_PERIODIC_LUA",
            "EXTEND_LOCK_LUA"} <= set(SCRIPTS)
    assert len(key_arguments(SCRIPTS["MOVE_DUE_LUA"])) > 10


def names_of_declared_keys(script: str) -> set[str]:
    """Variables that only ever hold a KEYS entry (or another such variable)."""
    values: dict[str, list[str]] = {}
    for assignment in ASSIGNMENT.finditer(script):
        values.setdefault(assignment[1], []).append(assignment[2])
    names: set[str] = set()
    while grown := {name for name, held in values.items() if name not in names
                    and all(DECLARED_KEY.fullmatch(value) or value in names for value in held)}:
        names |= grown
    return names


def undeclared_keys(script: str) -> list[tuple[str, str]]:
    names = names_of_declared_keys(script)
    return [(command, arg) for command, arg in key_arguments(script)
            if not DECLARED_KEY.fullmatch(arg) and arg not in names]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_every_key_a_script_touches_is_declared_in_keys(name: str) -> None:
    assert undeclared_keys(SCRIPTS[name]) == []


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_no_script_builds_a_key_name(name: str) -> None:
    assert not re.search(r"'(rq|chime):", SCRIPTS[name])


def test_the_key_check_catches_a_key_built_inside_a_script() -> None:
    script = "redis.call('HSET', 'rq:job:' .. ARGV[1], 'status', 'queued')\nredis.call('COPY', KEYS[1], 'x' .. y)"
    assert undeclared_keys(script) == [("HSET", "'rq:job:' .. ARGV[1]"), ("COPY", "'x' .. y")]


def test_the_key_check_follows_variables_that_hold_only_declared_keys() -> None:
    script = """
local job = KEYS[2]
local alias = job
local built = 'chime:inflight:' .. ARGV[1]
local mixed = KEYS[3]
if ARGV[2] == '1' then mixed = ARGV[3] end
redis.call('DEL', job); redis.call('DEL', alias); redis.call('ZADD', built, 1, 'x'); redis.call('HGET', mixed, 'f')
"""
    assert undeclared_keys(script) == [("ZADD", "built"), ("HGET", "mixed")]


def test_the_handled_status_test_is_written_once_and_shared() -> None:
    users = [name for name, text in SCRIPTS.items() if "is_handled(" in text]
    assert {"SAVE_UNLESS_HANDLED_LUA", "PUSH_NOW_LUA", "REPAIR_PENDING_LUA"} <= set(users)
    assert all(text.count("local function is_handled") == 1 for name, text in SCRIPTS.items() if name in users)
    assert sum(text.count("'finished'") for text in SCRIPTS.values()) == len(users)  # only inside is_handled


def test_no_other_module_spells_a_redis_key_or_holds_a_script() -> None:
    offenders = []
    for path in product_files():
        if path.name in ("redis_keys.py", "redis_scripts.py") and path.parent.name == "chime":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                    node.value.startswith(("rq:", "chime:")) or "redis.call(" in node.value):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:40]!r}")
    assert offenders == []


def test_the_rq_keys_follow_rq_and_rq_schedulers_own_layout(redis_url: str) -> None:
    import redis

    connection = redis.Redis.from_url(redis_url)
    assert redis_keys.job_key("chime-7-1-1") == Job.key_for("chime-7-1-1")
    assert redis_keys.queue_key("high") == Queue("high", connection=connection).key
    assert redis_keys.QUEUES_SET_KEY == Queue.redis_queues_keys
    assert redis_keys.started_registry_key("low") == StartedJobRegistry("low", connection=connection).key
    assert redis_keys.ended_registry_keys("low") == tuple(registry("low", connection=connection).key for registry in (
        FinishedJobRegistry, FailedJobRegistry, CanceledJobRegistry))
    assert redis_keys.SCHEDULED_KEY == Scheduler.scheduled_jobs_key
