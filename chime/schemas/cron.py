"""What GET /api/cron/preview/ answers, and the defaults of its query arguments."""
from __future__ import annotations

from pydantic import Field

from chime.schemas.common import Instant, Sent
from chime.triggers import MAX_PREVIEW_COUNT

DEFAULT_PREVIEW_COUNT = 5
DEFAULT_TIMEZONE = "UTC"


class CronPreview(Sent):
    next_runs: list[Instant] = Field(max_length=MAX_PREVIEW_COUNT,
                                     description="The fire times after `from` (else now), in UTC")
    description: str = Field(description="The expression in words")
