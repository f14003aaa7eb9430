"""A scheduled occurrence's job hash fits Redis's compact hash encoding under the embedded Redis's
setting (bench/redis_memory.py measures what that saves), on a real redis-server."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import redis as redis_lib

from chime import occurrence as occ
from scheduler.devrun import COMPACT_HASH_VALUE_BYTES, embedded_redis_settings

# A long-lived task: a big id, a creation instant with microseconds, the longest trigger name.
TASK = dict(task_id=2_000_000_000, attempt=99, trigger="RECOVERY", version=123_456, queue="default",
            timeout_seconds=86_400, task_created_at=datetime(2026, 11, 30, 12, 4, 59, 123456, tzinfo=timezone.utc))


@pytest.fixture
def connection(redis_url: str) -> redis_lib.Redis:
    connection = redis_lib.Redis.from_url(redis_url)
    default = connection.config_get("hash-max-ziplist-value")["hash-max-ziplist-value"]
    yield connection
    connection.config_set("hash-max-ziplist-value", default)


def test_the_embedded_redis_is_configured_for_compact_job_hashes(tmp_path) -> None:
    settings = embedded_redis_settings(6379, "secret", tmp_path)

    assert settings["hash-max-ziplist-value"] == str(COMPACT_HASH_VALUE_BYTES)


def test_a_scheduled_job_hash_is_stored_compact_under_that_setting(connection: redis_lib.Redis) -> None:
    connection.config_set("hash-max-ziplist-value", COMPACT_HASH_VALUE_BYTES)
    pending = occ.Occurrence(scheduled_for=datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc), **TASK)

    occ.replace_pending(connection, pending.task_id, pending)

    assert connection.object("encoding", occ.job_key(pending.job_id)) in (b"listpack", b"ziplist")


def test_with_redis_defaults_the_same_hash_is_a_full_hashtable(connection: redis_lib.Redis) -> None:
    """Why the setting matters: the payload alone is over the default 64-byte limit."""
    connection.config_set("hash-max-ziplist-value", 64)
    pending = occ.Occurrence(scheduled_for=datetime(2026, 12, 31, tzinfo=timezone.utc), **TASK)

    occ.replace_pending(connection, pending.task_id, pending)

    assert connection.object("encoding", occ.job_key(pending.job_id)) == b"hashtable"
