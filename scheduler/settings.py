"""Settings module for `rq worker -c scheduler.settings` (the Procfile's worker) and `rq info -c scheduler.settings`.

RQ's command line reads REDIS_URL with redis-py's `Redis.from_url`, which knows no Sentinel; for a
redis+sentinel:// REDIS_URL this module hands RQ its SENTINEL settings instead (REDIS_URL None),
translated by the same parser the web app and the scheduler use (chime.redis_url).
"""
import os

from chime.config import DEFAULT_REDIS_URL
from chime.extensions import REDIS_SOCKET_TIMEOUT_SECONDS
from chime.redis_url import rq_settings

_SETTINGS = rq_settings(os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL, REDIS_SOCKET_TIMEOUT_SECONDS)
REDIS_URL = _SETTINGS["REDIS_URL"]
SENTINEL = _SETTINGS["SENTINEL"]
