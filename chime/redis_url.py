"""REDIS_URL, read once for every process: a plain redis:// URL or a redis+sentinel:// URL.

Plain URLs follow redis-py's grammar (`redis://[[user]:password@]host[:port][/db]`, `rediss://`,
`unix://`) and are handed to redis-py as they are. Sentinel URLs read:

    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db][?sentinel_password=…]

- the hosts are the Sentinels (port 26379 when left out; IPv6 in brackets), tried in order;
- `service` is the master's name in the Sentinels' `sentinel monitor <service> …` line (required);
- `db` is the database number on the master (0 when left out);
- `user`/`password` authenticate to the master and its replicas (`requirepass`/ACL);
- `sentinel_password` (and `sentinel_username`) authenticate to the Sentinels themselves, for
  Sentinels configured with `requirepass`; without them the Sentinels are asked without a password.

Percent-encode reserved characters in passwords (`@` as %40, `/` as %2F, `,` as %2C).
Pure: this module only parses; chime.extensions and scheduler.settings open the connections.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from chime.config import ConfigError

SENTINEL_SCHEME = "redis+sentinel://"
DEFAULT_SENTINEL_PORT = 26379
SENTINEL_QUERY_KEYS = frozenset({"sentinel_password", "sentinel_username"})
SENTINEL_URL_GRAMMAR = ("redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]"
                        "[?sentinel_password=...]")


@dataclass(frozen=True)
class SentinelTarget:
    """Where a redis+sentinel:// URL points: the Sentinels, the service and how to log in."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None


def is_sentinel_url(url: str) -> bool:
    return url.strip().lower().startswith(SENTINEL_SCHEME)


def bad_url(reason: str) -> ConfigError:
    return ConfigError(f"REDIS_URL: {reason}; expected {SENTINEL_URL_GRAMMAR}")


def parse_host(entry: str) -> tuple[str, int]:
    """Read one `host[:port]` or `[v6]:port` of the Sentinel list."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    else:
        host, _, port_text = entry.partition(":")
    if not host:
        raise bad_url(f"empty Sentinel host in {entry!r}")
    if not port_text:
        return host, DEFAULT_SENTINEL_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise bad_url(f"bad Sentinel port in {entry!r}")
    return host, int(port_text)


def parse_userinfo(userinfo: str) -> tuple[str | None, str | None]:
    """Split `user:password` (either may be empty) into decoded parts."""
    if not userinfo:
        return None, None
    user, has_password, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if has_password and password else None)


def parse_path(path: str) -> tuple[str, int]:
    """Read `/service[/db]`."""
    parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
    if not parts:
        raise bad_url("the service (master) name is missing")
    if len(parts) > 2:
        raise bad_url(f"too many path parts in {path!r}")
    db_text = parts[1] if len(parts) == 2 else "0"
    if not db_text.isdigit():
        raise bad_url(f"the database number {db_text!r} is not a number")
    return parts[0], int(db_text)


def parse_query(query: str) -> dict[str, str]:
    values = parse_qs(query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(values) - SENTINEL_QUERY_KEYS)
    if unknown:
        raise bad_url(f"unknown option(s) {', '.join(unknown)}")
    return {key: found[-1] for key, found in values.items()}


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Read a redis+sentinel:// URL; ConfigError says what is wrong with a malformed one."""
    if not is_sentinel_url(url):
        raise bad_url("not a redis+sentinel:// URL")
    rest, _, query = url.strip()[len(SENTINEL_SCHEME):].partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    if not hosts:
        raise bad_url("no Sentinel host")
    username, password = parse_userinfo(userinfo)
    service, db = parse_path(slash + path)
    options = parse_query(query)
    return SentinelTarget(
        sentinels=tuple(parse_host(h.strip()) for h in hosts.split(",")),
        service=service, db=db, username=username, password=password,
        sentinel_username=options.get("sentinel_username") or None,
        sentinel_password=options.get("sentinel_password") or None,
    )


def master_kwargs(target: SentinelTarget, timeout_seconds: float) -> dict[str, Any]:
    """Connection arguments for the master (and replicas) the Sentinels name."""
    return {"db": target.db, "username": target.username, "password": target.password,
            "socket_timeout": timeout_seconds, "socket_connect_timeout": timeout_seconds}


def sentinel_kwargs(target: SentinelTarget, timeout_seconds: float) -> dict[str, Any]:
    """Connection arguments for the Sentinels themselves."""
    return {"username": target.sentinel_username, "password": target.sentinel_password,
            "socket_timeout": timeout_seconds, "socket_connect_timeout": timeout_seconds}


def rq_settings(url: str, timeout_seconds: float) -> dict[str, Any]:
    """The REDIS_URL / SENTINEL settings RQ's command line reads from a settings module (`-c`)."""
    if not is_sentinel_url(url):
        return {"REDIS_URL": url, "SENTINEL": None}
    target = parse_sentinel_url(url)
    master = master_kwargs(target, timeout_seconds)
    return {"REDIS_URL": None, "SENTINEL": {
        "INSTANCES": list(target.sentinels), "MASTER_NAME": target.service,
        "DB": master.pop("db"), "USERNAME": master.pop("username"), "PASSWORD": master.pop("password"),
        "SOCKET_TIMEOUT": master.pop("socket_timeout"), "CONNECTION_KWARGS": master,
        "SENTINEL_KWARGS": sentinel_kwargs(target, timeout_seconds),
    }}
