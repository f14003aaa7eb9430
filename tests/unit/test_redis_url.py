"""REDIS_URL: the redis+sentinel:// grammar README documents, read by one parser for every process."""
from __future__ import annotations

from typing import Any

import pytest
from redis.connection import parse_url
from redis.sentinel import SentinelConnectionPool
from rq.cli.helpers import get_redis_from_config

from chime.config import ConfigError
from scheduler.devrun import DevrunError, choose_redis, rq_info_command
from chime.extensions import connect_redis
from chime.redis_url import SentinelTarget, parse_sentinel_url, rq_settings


@pytest.mark.parametrize(("url", "expected"), [
    ("redis+sentinel://h1:26379,h2:26379/mymaster",
     SentinelTarget(sentinels=(("h1", 26379), ("h2", 26379)), service="mymaster")),
    ("redis+sentinel://:pw@h1:26379,h2:26379/mymaster/0",
     SentinelTarget(sentinels=(("h1", 26379), ("h2", 26379)), service="mymaster", password="pw")),
    ("redis+sentinel://s1,s2:26380,[::1]:26381/cache/3",
     SentinelTarget(sentinels=(("s1", 26379), ("s2", 26380), ("::1", 26381)), service="cache", db=3)),
    ("redis+sentinel://app:pw@s1/main/1?sentinel_password=spw&sentinel_username=watch",
     SentinelTarget(sentinels=(("s1", 26379),), service="main", db=1, username="app", password="pw",
                    sentinel_username="watch", sentinel_password="spw")),
])
def test_a_sentinel_url_names_the_sentinels_the_service_the_database_and_the_logins(
        url: str, expected: SentinelTarget) -> None:
    assert parse_sentinel_url(url) == expected


def test_percent_encoded_logins_decode_as_redis_py_decodes_them_in_a_plain_url() -> None:
    userinfo = "us%3Aer:p%40ss%2Fw%2C1%3F"
    reference = parse_url(f"redis://{userinfo}@h:6379/0")
    target = parse_sentinel_url(f"redis+sentinel://{userinfo}@h:26379/m")
    assert (target.username, target.password) == (reference["username"], reference["password"])


@pytest.mark.parametrize(("url", "complaint"), [
    ("redis+sentinel://h1:26379,h2:26379", "service (master) name is missing"),
    ("redis+sentinel://h1:26379,h2:26379/", "service (master) name is missing"),
    ("redis+sentinel:///mymaster", "no Sentinel host"),
    ("redis+sentinel://h1:port/mymaster", "bad Sentinel port"),
    ("redis+sentinel://h1:70000/mymaster", "bad Sentinel port"),
    ("redis+sentinel://h1,,h2/mymaster", "empty Sentinel host"),
    ("redis+sentinel://h1/mymaster/zero", "is not a number"),
    ("redis+sentinel://h1/mymaster/0/extra", "too many path parts"),
    ("redis+sentinel://h1/mymaster?password=x", "unknown option(s) password"),
])
def test_a_malformed_sentinel_url_is_refused_with_the_reason_and_the_grammar(url: str, complaint: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_sentinel_url(url)
    assert complaint in str(raised.value)
    assert "redis+sentinel://[[user]:password@]host[:port]" in str(raised.value)


def pool_kwargs(client: Any) -> dict[str, Any]:
    return client.connection_pool.connection_kwargs


def test_rq_builds_a_sentinel_client_from_the_worker_settings_with_the_urls_logins() -> None:
    settings = rq_settings("redis+sentinel://:pw@s1:26379,s2:26380/cache/2?sentinel_password=spw", 5.0)
    client = get_redis_from_config(settings)  # RQ's own reader of `rq worker -c scheduler.settings`
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "cache"
    assert (pool_kwargs(client)["db"], pool_kwargs(client)["password"]) == (2, "pw")
    sentinels = pool.sentinel_manager.sentinels
    assert [(s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
            for s in sentinels] == [("s1", 26379), ("s2", 26380)]
    assert {s.connection_pool.connection_kwargs["password"] for s in sentinels} == {"spw"}
    assert {s.connection_pool.connection_kwargs["socket_timeout"] for s in sentinels} == {5.0}


def test_the_app_and_the_worker_reach_the_same_master_with_the_same_login() -> None:
    url = "redis+sentinel://app:pw@s1/cache/4?sentinel_password=spw"
    app_client = connect_redis(url)
    rq_client = get_redis_from_config(rq_settings(url, 5.0))
    for key in ("db", "username", "password"):
        assert pool_kwargs(app_client)[key] == pool_kwargs(rq_client)[key]
    assert app_client.connection_pool.service_name == rq_client.connection_pool.service_name == "cache"


def test_a_plain_url_is_handed_to_rq_as_it_is() -> None:
    assert rq_settings("redis://:pw@10.0.0.5:6380/1", 5.0) == {"REDIS_URL": "redis://:pw@10.0.0.5:6380/1",
                                                               "SENTINEL": None}


def test_the_rq_info_hint_reads_the_worker_settings_for_a_sentinel_url() -> None:
    assert rq_info_command("rq", "redis://127.0.0.1:6379/0") == "rq info --url redis://127.0.0.1:6379/0"
    hint = rq_info_command("rq", "redis+sentinel://:s3cr3t@s1/mymaster")
    assert hint.endswith('REDIS_URL="$REDIS_URL" rq info -c scheduler.settings') and "s3cr3t" not in hint


def test_make_run_refuses_a_malformed_sentinel_url_with_a_message_not_a_traceback(tmp_path: Any) -> None:
    with pytest.raises(DevrunError, match="service \\(master\\) name is missing"):
        choose_redis({"REDIS_URL": "redis+sentinel://127.0.0.1:1"}, tmp_path)
