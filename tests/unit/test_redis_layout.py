"""One module owns Redis: every key name is in chime.redis_keys, every Lua script in chime.redis_scripts,
and a script touches only the keys it is handed in KEYS."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq_scheduler import Scheduler

from chime import redis_keys, redis_scripts

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ("chime", "scheduler", "webapp", "jobs")
SCRIPTS = {name: text for name, text in vars(redis_scripts).items() if name.endswith("_LUA")}
# redis.call('COMMAND', first argument, second argument ...
CALL = re.compile(r"redis\.call\(\s*'(?P<command>\w+)'(?P<args>(?:\s*,\s*[^,()]+(?:\([^()]*\))?[^,()]*)*)")
KEYLESS_COMMANDS = {"TIME"}
TWO_KEY_COMMANDS = {"COPY"}  # COPY source destination


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


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_every_key_a_script_touches_is_declared_in_keys(name: str) -> None:
    undeclared = [(command, arg) for command, arg in key_arguments(SCRIPTS[name])
                  if not re.fullmatch(r"KEYS\[[^\]]+\]", arg)]
    assert undeclared == []


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_no_script_builds_a_key_name(name: str) -> None:
    assert not re.search(r"'(rq|chime):", SCRIPTS[name])


def test_the_key_check_catches_a_key_built_inside_a_script() -> None:
    script = "redis.call('HSET', 'rq:job:' .. ARGV[1], 'status', 'queued')\nredis.call('COPY', KEYS[1], 'x' .. y)"
    assert [arg for _, arg in key_arguments(script) if not arg.startswith("KEYS[")] == ["'rq:job:' .. ARGV[1]", "'x' .. y"]


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
    assert redis_keys.SCHEDULED_KEY == Scheduler.scheduled_jobs_key
