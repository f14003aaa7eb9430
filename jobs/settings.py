"""Settings module for `rq worker -c jobs.settings` (the Procfile's worker)."""
import os

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
