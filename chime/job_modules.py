"""Your own jobs: import the modules named by CHIME_JOB_MODULES and by the `chime.jobs` entry points.

Every process builds its app through `chime.app.configure` (the web app, the CLI, the worker, the
scheduler), which calls `load_job_modules` once the settings are read; importing a module registers
its `@job` functions in `jobs.registry`, as `jobs.builtin` does. Registration stays in `jobs`; finding
and importing the modules is the core's start-up work.

An entry point of the group `chime.jobs` names a module (`example = "chime_example_jobs.jobs"` in a
package's pyproject.toml); its name is only a label for messages. One that names an attribute
(`module:function`) is refused: a module is all Chime imports, so no function is ever called at load.

A module that cannot be loaded (not found, raises while importing, declares a job the registry refuses
or whose name another module already registered) stops start-up with a JobModuleError naming the module,
where it was named and the cause, on one line; the jobs it had registered before failing are removed.
"""
from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

import jobs.registry as registry
from chime.config import ConfigError

ENTRY_POINT_GROUP = "chime.jobs"
CAUSE_CHARS = 300


class JobModuleError(ConfigError):
    """A job module named by CHIME_JOB_MODULES or a `chime.jobs` entry point cannot be loaded."""


@dataclass(frozen=True)
class JobModule:
    """A module to import for its jobs, and where it was named (for messages)."""

    module: str
    origin: str


def configured_modules(names: Iterable[str]) -> list[JobModule]:
    """The modules CHIME_JOB_MODULES names (already checked to be module paths by chime.config)."""
    return [JobModule(name, "CHIME_JOB_MODULES") for name in names]


def entry_point_modules() -> list[JobModule]:
    """The modules the installed distributions name in the `chime.jobs` entry-point group."""
    return [_module_of(entry_point) for entry_point in _entry_points_on(tuple(sys.path))]


@functools.lru_cache(maxsize=8)
def _entry_points_on(_path: tuple[str, ...]) -> tuple[EntryPoint, ...]:
    """The group's entry points, read once per sys.path (reading every installed distribution's metadata
    takes ~15 ms, and a test process builds hundreds of apps); a package installed later needs a restart."""
    return tuple(entry_points(group=ENTRY_POINT_GROUP))


def _module_of(entry_point: EntryPoint) -> JobModule:
    dist = entry_point.dist
    where = f" of {dist.name} {dist.version}" if dist is not None else ""
    origin = f"{ENTRY_POINT_GROUP} entry point {entry_point.name!r}{where}"
    if entry_point.attr:
        raise JobModuleError(f"{origin}: {entry_point.value!r} names an attribute; a {ENTRY_POINT_GROUP} "
                             f"entry point names a module whose @job functions register themselves "
                             f"(such as {entry_point.module!r})")
    return JobModule(entry_point.module, origin)


def load_job_modules(configured: Iterable[str]) -> list[str]:
    """Import every job module (CHIME_JOB_MODULES first, then the entry points), each once; return their names."""
    loaded: list[str] = []
    for job_module in [*configured_modules(configured), *entry_point_modules()]:
        if job_module.module not in loaded:
            import_job_module(job_module)
            loaded.append(job_module.module)
    return loaded


def import_job_module(job_module: JobModule) -> None:
    """Import one module; on any failure, unregister what it registered and raise a JobModuleError."""
    before = {spec.name for spec in registry.all_jobs()}
    try:
        importlib.import_module(job_module.module)
    except Exception as error:  # noqa: BLE001 - whatever a module raises, start-up stops with its name
        for spec in registry.all_jobs():
            if spec.name not in before:
                registry.unregister(spec.name)
        raise JobModuleError(f"{job_module.origin}: cannot load job module {job_module.module!r}: "
                             f"{type(error).__name__}: {one_line(str(error))}") from error


def one_line(text: str) -> str:
    """The cause's message on one line, at most CAUSE_CHARS characters."""
    flat = " ".join(text.split()) or "(no message)"
    return flat if len(flat) <= CAUSE_CHARS else flat[:CAUSE_CHARS - 1] + "…"
