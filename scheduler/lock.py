"""A Redis lock that expires and has an owner: only the holder may extend or release it."""
from __future__ import annotations

import secrets

from redis import Redis

from chime.redis_scripts import EXTEND_LOCK_LUA, RELEASE_LOCK_LUA


class Lock:
    """SET NX PX with a random owner token."""

    def __init__(self, connection: Redis, key: str, ttl_seconds: float) -> None:
        self.connection = connection
        self.key = key
        self.ttl_ms = int(ttl_seconds * 1000)
        self.token = secrets.token_hex(16)
        # Registered once: each call sends the script's SHA, not its text (the scheduler extends every second).
        self.extend_script = connection.register_script(EXTEND_LOCK_LUA)
        self.release_script = connection.register_script(RELEASE_LOCK_LUA)

    def acquire_or_extend(self) -> bool:
        """Extend the lock if we hold it, else try to take it; say whether we hold it now."""
        if self.extend_script(keys=[self.key], args=[self.token, self.ttl_ms]):
            return True
        return bool(self.connection.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def release(self) -> bool:
        """Release the lock if we still hold it."""
        return bool(self.release_script(keys=[self.key], args=[self.token]))
