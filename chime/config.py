"""Turn the process environment into settings: pure, with named defaults."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_SECRET_KEY = "dev-insecure-change-me"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"  # or redis+sentinel://…, see chime.redis_url
DEFAULT_RECONCILE_INTERVAL_SECONDS = 60
DEFAULT_RETENTION_INTERVAL_SECONDS = 3600  # the log-retention prune runs hourly
DEFAULT_LOG_RETENTION_DAYS = 30
DEFAULT_AUDIT_RETENTION_DAYS = 365  # audit events are kept this long; 0 keeps them forever
DEFAULT_PAGE_LIMIT = 50
MAX_PAGE_LIMIT = 500
MAX_CONTENT_LENGTH_BYTES = 1024 * 1024
SQLITE_BUSY_TIMEOUT_SECONDS = 30
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
MAX_PROXY_DEPTH = 10
DEFAULT_LIVE_MAX_STREAMS = 80  # open live streams per web process; keep below gunicorn's --threads (Procfile)


class ConfigError(RuntimeError):
    """The environment asks for something the app refuses to run with."""


def is_true(value: str | None) -> bool:
    """Read an environment flag such as ALLOW_SHELL_JOBS=true."""
    return (value or "").strip().lower() in TRUE_WORDS


def egress_allow(raw: str) -> str:
    """CHIME_EGRESS_ALLOW: networks and hosts the http_request job may reach besides public addresses.

    The job reads it from the environment itself (jobs.egress); the app refuses to start when it is
    malformed, so a typo is not found by the first run that needs it.
    """
    from jobs.egress import parse_allow_list

    try:
        parse_allow_list(raw)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return raw.strip()


def job_modules(raw: str) -> tuple[str, ...]:
    """CHIME_JOB_MODULES: comma-separated module paths whose @job functions every process registers."""
    names = tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    for name in names:
        if not all(part.isidentifier() for part in name.split(".")):
            raise ConfigError(f"CHIME_JOB_MODULES: {name!r} is not a module path such as mycompany.jobs")
    return names


def normalise_database_url(url: str) -> str:
    """Map postgres:// and postgresql:// onto the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def default_database_url(instance_path: str) -> str:
    """Return the SQLite database under the instance folder."""
    return "sqlite:///" + str(Path(instance_path) / "chime.sqlite3")


def instance_path_from_env(env: Mapping[str, str]) -> str | None:
    """CHIME_INSTANCE_PATH moves the instance folder (None keeps Flask's default)."""
    value = env.get("CHIME_INSTANCE_PATH", "").strip()
    return os.path.abspath(value) if value else None


def whole_number(env: Mapping[str, str], name: str, default: int, *, minimum: int | None = None) -> int:
    """The whole number `name` sets (at least `minimum`), or `default` when it is unset; else a ConfigError."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = None
    if value is None or (minimum is not None and value < minimum):
        at_least = f" of at least {minimum}" if minimum is not None else ""
        raise ConfigError(f"{name} must be a whole number{at_least}, not {raw!r}")
    return value


def settings_from_env(env: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """Build the Flask config mapping from environment variables."""
    tokens = [t.strip() for t in env.get("API_TOKENS", "").split(",") if t.strip()]
    return {
        "ENV_NAME": env.get("CHIME_ENV", env.get("FLASK_ENV", "development")),
        "SECRET_KEY": env.get("SECRET_KEY", DEFAULT_SECRET_KEY),
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(
            env.get("DATABASE_URL") or default_database_url(instance_path)
        ),
        "REDIS_URL": env.get("REDIS_URL", DEFAULT_REDIS_URL),
        "API_TOKENS": tokens,
        "ADMIN_USERNAME": env.get("ADMIN_USERNAME", "admin"),
        "ADMIN_PASSWORD": env.get("ADMIN_PASSWORD") or None,
        "ALLOW_SHELL_JOBS": is_true(env.get("ALLOW_SHELL_JOBS")),
        "EGRESS_ALLOW": egress_allow(env.get("CHIME_EGRESS_ALLOW", "")),
        "RECONCILE_INTERVAL_SECONDS": whole_number(env, "RECONCILE_INTERVAL_SECONDS",
                                                   DEFAULT_RECONCILE_INTERVAL_SECONDS, minimum=1),
        "RETENTION_INTERVAL_SECONDS": whole_number(env, "RETENTION_INTERVAL_SECONDS",
                                                   DEFAULT_RETENTION_INTERVAL_SECONDS, minimum=1),
        "LOG_RETENTION_DAYS": whole_number(env, "LOG_RETENTION_DAYS", DEFAULT_LOG_RETENTION_DAYS),  # <= 0: off
        "AUDIT_RETENTION_DAYS": whole_number(env, "CHIME_AUDIT_RETENTION_DAYS", DEFAULT_AUDIT_RETENTION_DAYS,
                                             minimum=0),  # 0: kept forever
        "METRICS_PER_TASK": is_true(env.get("CHIME_METRICS_PER_TASK")),  # a task_id label: grows with the tasks
        "JOB_MODULES": job_modules(env.get("CHIME_JOB_MODULES", "")),  # imported at start-up (chime.job_modules)
        "MAX_CONTENT_LENGTH": MAX_CONTENT_LENGTH_BYTES,
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
        **web_settings(env),
    }


def web_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings of the web boundary: cookies, the trusted proxy depth, the public URL."""
    return {
        "SESSION_COOKIE_SECURE": env.get("CHIME_ENV", env.get("FLASK_ENV", "development")) == "production",
        "PROXY_FIX_X_FOR": proxy_depth(env.get("CHIME_PROXY_FIX_X_FOR", "")),
        "PUBLIC_URL": public_url(env.get("CHIME_PUBLIC_URL", "")),
        "LIVE_MAX_STREAMS": whole_number(env, "CHIME_LIVE_MAX_STREAMS", DEFAULT_LIVE_MAX_STREAMS, minimum=0),
    }


def proxy_depth(raw: str) -> int:
    """CHIME_PROXY_FIX_X_FOR: how many X-Forwarded-For entries to trust (0, the default: none)."""
    text = raw.strip() or "0"
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_PROXY_DEPTH:
        raise ConfigError(f"CHIME_PROXY_FIX_X_FOR must be a whole number from 0 to {MAX_PROXY_DEPTH}, not {raw!r}")
    return int(text)


def public_url(raw: str) -> str:
    """CHIME_PUBLIC_URL: the site's external base URL (https://chime.example.com), '' when unset."""
    text = raw.strip().rstrip("/")
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"CHIME_PUBLIC_URL must be an http(s) URL such as https://chime.example.com, not {raw!r}")
    return text


def check_production_settings(config: Mapping[str, Any]) -> None:
    """Refuse to run in production with the default secret key."""
    if config.get("ENV_NAME") == "production" and config.get("SECRET_KEY") == DEFAULT_SECRET_KEY:
        raise ConfigError("SECRET_KEY must be set in production (CHIME_ENV=production)")
