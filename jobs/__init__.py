"""Named job functions that Chime tasks run, with their registry and argument validation.

Importing this package registers the built-in jobs (see ``jobs.builtin``).
"""

from __future__ import annotations

from jobs import registry
from jobs.registry import (
    ArgsError,
    JobContext,
    JobDisabledError,
    JobError,
    JobSpec,
    Parameter,
    UnknownJobError,
    all_jobs,
    get,
    is_enabled,
    job,
    run,
    validate_args,
)

__all__ = [
    "ArgsError",
    "JobContext",
    "JobDisabledError",
    "JobError",
    "JobSpec",
    "Parameter",
    "UnknownJobError",
    "all_jobs",
    "get",
    "is_enabled",
    "job",
    "registry",
    "run",
    "validate_args",
]

registry.load_builtin()
