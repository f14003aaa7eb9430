"""Keep the registry of named job functions, introspect their parameters and validate arguments.

This module is framework-free: the API, the admin and the worker-side executor all use
``validate_args`` and ``run`` from here.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import math
import os
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Union, get_args, get_origin, get_type_hints

BUILTIN_MODULE = "jobs.builtin"
TRUTHY_ENV_VALUES = frozenset({"true", "1", "yes"})

ArgsValidator = Callable[[dict[str, Any]], Mapping[str, str]]

_NONE_TYPE = type(None)
_TYPE_NAMES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
    Any: "any",
}
PARAMETER_TYPES = tuple(dict.fromkeys(_TYPE_NAMES.values()))  # what a parameter's "type" may say


# --------------------------------------------------------------------------- errors


class JobError(Exception):
    """Base class for every registry error."""


class UnknownJobError(JobError, LookupError):
    """Raised when no job is registered under the requested name."""

    def __init__(self, name: Any, known: tuple[str, ...]) -> None:
        self.name = name
        self.known = known
        listing = ", ".join(known) if known else "(none)"
        super().__init__(f"Unknown job {name!r}. Known jobs: {listing}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with the constructor arguments, not the message."""
        return type(self), (self.name, self.known)


class ArgsError(JobError, ValueError):
    """Raised when job arguments are invalid; ``fields`` maps argument name to reason."""

    def __init__(self, fields: Mapping[str, str], job: str | None = None) -> None:
        self.fields: dict[str, str] = dict(fields)
        self.job = job
        super().__init__(_args_error_message(self.fields, job))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with the constructor arguments, not the message."""
        return type(self), (self.fields, self.job)


class JobDisabledError(JobError):
    """Raised when running a job that is switched off by configuration."""


def _args_error_message(fields: Mapping[str, str], job: str | None) -> str:
    """Build a one-sentence summary of the field errors."""
    subject = f"Invalid arguments for job {job!r}" if job else "Invalid job arguments"
    details = "; ".join(f"{name}: {reason}" for name, reason in fields.items())
    return f"{subject}: {details}." if details else f"{subject}."


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class JobContext:
    """Describe the execution a job is running in; filled in by the executor for every run.

    A job asks for it with a parameter annotated ``JobContext`` (any name; ``JobContext | None`` too):
    that parameter is not one of the job's arguments, the executor passes it.
    ``trigger`` is how the run came about: "SCHEDULE", "MANUAL", "RETRY", ... (chime.enums.Trigger's values).
    """

    task_id: int | None = None
    execution_id: int | None = None
    attempt: int = 1
    scheduled_for: datetime | None = None
    task_name: str | None = None
    trigger: str | None = None

    @property
    def idempotency_key(self) -> str | None:
        """The same for every attempt of one occurrence: a job whose effect lands elsewhere can use it
        to make that effect happen once, even when a lost worker's attempt is retried (at-least-once)."""
        if self.task_id is None or self.scheduled_for is None:
            return None
        return f"chime-{self.task_id}-{self.scheduled_for.astimezone(timezone.utc).strftime('%Y%m%dT%H%M%S.%fZ')}"


@dataclass(frozen=True)
class Parameter:
    """Describe one public parameter of a job."""

    name: str
    type: str
    required: bool
    default: Any = None
    nullable: bool = False
    annotation: Any = field(default=Any, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form of this parameter."""
        return {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default": copy.deepcopy(self.default),
            "nullable": self.nullable,
        }


@dataclass(frozen=True)
class JobSpec:
    """Describe a registered job: its function, description and public parameters."""

    name: str
    func: Callable[..., Any]
    description: str
    parameters: tuple[Parameter, ...]
    context_param: str | None = None
    validate: ArgsValidator | None = field(default=None, repr=False)
    enabled_env: str | None = None

    @property
    def enabled(self) -> bool:
        """Return whether the job may run under the current environment."""
        return self.enabled_env is None or env_flag(self.enabled_env)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form of this job."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": [parameter.to_dict() for parameter in self.parameters],
        }


_REGISTRY: dict[str, JobSpec] = {}


# --------------------------------------------------------------------------- registration


def job(
    name: str | Callable[..., Any] | None = None,
    *,
    description: str | None = None,
    validate: ArgsValidator | None = None,
    enabled_env: str | None = None,
) -> Any:
    """Register the decorated function as a job; usable as ``@job``, ``@job()`` or ``@job("x")``."""
    if callable(name):
        register(make_spec(name))
        return name

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        register(
            make_spec(
                func,
                name=name,
                description=description,
                validate=validate,
                enabled_env=enabled_env,
            )
        )
        return func

    return decorator


def make_spec(
    func: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    validate: ArgsValidator | None = None,
    enabled_env: str | None = None,
) -> JobSpec:
    """Build a JobSpec for ``func`` by introspecting its signature, without registering it."""
    job_name = name or func.__name__
    parameters, context_param = _introspect(job_name, func)
    return JobSpec(
        name=job_name,
        func=func,
        description=description if description is not None else _first_doc_line(func),
        parameters=parameters,
        context_param=context_param,
        validate=validate,
        enabled_env=enabled_env,
    )


def register(spec: JobSpec) -> JobSpec:
    """Add ``spec`` to the registry; raise JobError if the name is taken."""
    if spec.name in _REGISTRY:
        owner = getattr(_REGISTRY[spec.name].func, "__module__", None) or "another module"
        raise JobError(f"A job named {spec.name!r} is already registered (by {owner})")
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> JobSpec:
    """Remove and return the job registered under ``name``."""
    spec = get(name)
    del _REGISTRY[name]
    return spec


@contextmanager
def temporary(*specs: JobSpec) -> Iterator[None]:
    """Register ``specs`` (and anything registered inside the block) only until the block exits."""
    snapshot = dict(_REGISTRY)
    try:
        for spec in specs:
            register(spec)
        yield
    finally:
        _REGISTRY.clear()
        _REGISTRY.update(snapshot)


def load_builtin() -> None:
    """Import the built-in jobs so that they register themselves."""
    importlib.import_module(BUILTIN_MODULE)


def _first_doc_line(func: Callable[..., Any]) -> str:
    """Return the first non-empty line of the function's docstring."""
    doc = inspect.getdoc(func) or ""
    return next((line.strip() for line in doc.splitlines() if line.strip()), "")


def _introspect(
    job_name: str, func: Callable[..., Any]
) -> tuple[tuple[Parameter, ...], str | None]:
    """Return the public parameters of ``func`` and the name of its context parameter."""
    try:
        hints = get_type_hints(func)
    except Exception as exc:  # unresolvable forward references and friends
        raise JobError(f"Cannot read type hints of job {job_name!r}: {exc}") from exc
    parameters: list[Parameter] = []
    context_param: str | None = None
    for param in inspect.signature(func).parameters.values():
        _check_param_kind(job_name, param)
        annotation = hints.get(param.name, Any)
        if _unwrap_optional(annotation)[0] is JobContext:
            if context_param is not None:
                raise JobError(f"Job {job_name!r} declares more than one JobContext parameter")
            context_param = param.name
            continue
        parameters.append(_make_parameter(job_name, param, annotation))
    return tuple(parameters), context_param


def _check_param_kind(job_name: str, param: inspect.Parameter) -> None:
    """Reject parameter kinds that cannot be filled from a JSON object."""
    if param.kind is param.VAR_POSITIONAL:
        raise JobError(f"Job {job_name!r} cannot take *{param.name}; declare named parameters")
    if param.kind is param.VAR_KEYWORD:
        raise JobError(f"Job {job_name!r} cannot take **{param.name}; declare named parameters")
    if param.kind is param.POSITIONAL_ONLY:
        raise JobError(f"Job {job_name!r} cannot take positional-only parameter {param.name!r}")


def _make_parameter(job_name: str, param: inspect.Parameter, annotation: Any) -> Parameter:
    """Build a Parameter from a signature parameter and its resolved annotation."""
    where = f"parameter {param.name!r} of job {job_name!r}"
    base, nullable = _unwrap_optional(annotation)
    _check_supported(base, where)
    required = param.default is inspect.Parameter.empty
    default = None if required else param.default
    if not required:
        _check_default(default, annotation, where)
    return Parameter(
        name=param.name,
        type=_type_name(base),
        required=required,
        default=default,
        nullable=nullable,
        annotation=annotation,
    )


def _check_default(default: Any, annotation: Any, where: str) -> None:
    """Require defaults to be strict JSON and to match the annotation."""
    try:
        json.dumps(default, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise JobError(f"Default of {where} is not JSON-serialisable: {exc}") from exc
    reason = _type_error(default, annotation)
    if reason is not None:
        raise JobError(f"Default of {where} does not match its annotation: {reason}")


# --------------------------------------------------------------------------- types


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """Split ``X | None`` into ``(X, True)``; return ``(annotation, False)`` otherwise."""
    if get_origin(annotation) not in (Union, types.UnionType):
        return annotation, False
    members = get_args(annotation)
    others = tuple(member for member in members if member is not _NONE_TYPE)
    if len(others) == 1:
        return others[0], len(others) < len(members)
    return annotation, False  # a real union: reported as unsupported


def _check_supported(annotation: Any, where: str) -> None:
    """Raise JobError unless the annotation is one the validator understands."""
    origin = get_origin(annotation)
    if origin is None:
        if annotation not in _TYPE_NAMES:
            raise JobError(f"Unsupported annotation {annotation!r} on {where}")
        return
    if origin is list:
        _check_supported_items(annotation, 1, where)
    elif origin is dict:
        _check_supported_items(annotation, 2, where)
        if get_args(annotation)[0] is not str:
            raise JobError(f"Only dict[str, ...] is supported on {where}")
    else:
        raise JobError(f"Unsupported annotation {annotation!r} on {where}")


def _check_supported_items(annotation: Any, count: int, where: str) -> None:
    """Check the element annotations of a generic list or dict."""
    args = get_args(annotation)
    if len(args) != count:
        raise JobError(f"Unsupported annotation {annotation!r} on {where}")
    for arg in args:
        _check_supported(_unwrap_optional(arg)[0], where)


def _type_name(annotation: Any) -> str:
    """Return the JSON-ish type name for a supported annotation."""
    return _TYPE_NAMES[get_origin(annotation) or annotation]


def _describe(annotation: Any) -> str:
    """Return a phrase such as "an integer" or "an array of integers"."""
    name = _type_name(annotation)
    if name == "any":
        return "any value"
    phrase = f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
    args = get_args(annotation)
    if name == "array" and args:
        return f"{phrase} of {_plural(args[0])}"
    value_name = _type_name(_unwrap_optional(args[1])[0]) if args else "any"
    return phrase if value_name == "any" else f"{phrase} with {value_name} values"


def _plural(annotation: Any) -> str:
    """Return the plural noun for an element annotation."""
    name = _type_name(_unwrap_optional(annotation)[0])
    return "values" if name == "any" else f"{name}s"


def _matches_kind(value: Any, kind: str) -> bool:
    """Return whether ``value`` is a JSON value of the given kind (bools are not numbers)."""
    if kind == "any":
        return True
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "integer":
        return isinstance(value, int)
    if kind == "number":
        return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    python_type = {"string": str, "object": dict, "array": list}[kind]
    return isinstance(value, python_type)


def _type_error(value: Any, annotation: Any) -> str | None:
    """Return why ``value`` does not fit ``annotation``, or None when it does."""
    base, nullable = _unwrap_optional(annotation)
    if value is None:
        return None if nullable or base is Any else "must not be null"
    if _matches_kind(value, _type_name(base)) and _items_match(value, base):
        return None
    suffix = " or null" if nullable else ""
    return f"must be {_describe(base)}{suffix}"


def _items_match(value: Any, annotation: Any) -> bool:
    """Check the elements of a generic list or dict value."""
    args = get_args(annotation)
    if not args:
        return True
    if isinstance(value, list):
        return all(_type_error(item, args[0]) is None for item in value)
    return all(
        isinstance(key, str) and _type_error(item, args[1]) is None
        for key, item in value.items()
    )


# --------------------------------------------------------------------------- lookup


def get(name: str) -> JobSpec:
    """Return the job registered under ``name``; raise UnknownJobError otherwise."""
    spec = _REGISTRY.get(name) if isinstance(name, str) else None
    if spec is None:
        raise UnknownJobError(name, tuple(sorted(_REGISTRY)))
    return spec


def all_jobs() -> list[JobSpec]:
    """Return every registered job, sorted by name."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def env_flag(variable: str) -> bool:
    """Return whether the environment variable is set to true, 1 or yes."""
    return os.environ.get(variable, "").strip().lower() in TRUTHY_ENV_VALUES


def is_enabled(name: str) -> bool:
    """Return whether the named job may run under the current environment."""
    return get(name).enabled


def disabled_message(spec: JobSpec) -> str:
    """Return the sentence explaining how to enable a disabled job."""
    return f"{spec.name.capitalize()} jobs are disabled; set {spec.enabled_env}=true to enable them"


# --------------------------------------------------------------------------- validation


def validate_args(name: str, args: Any) -> dict[str, Any]:
    """Validate ``args`` for the named job and return them with defaults filled in.

    Every problem is collected before raising. A job's ``validate`` hook receives only the
    arguments that passed the type checks (defaults included), so it must look keys up with
    ``in``/``get`` rather than assume they are all present.
    """
    spec = get(name)
    if not isinstance(args, dict):
        raise ArgsError({"args": "must be an object"}, job=spec.name)
    errors: dict[str, str] = {}
    if not spec.enabled:
        errors["job"] = f"{spec.name} jobs are disabled; set {spec.enabled_env}=true"
    known = {parameter.name for parameter in spec.parameters}
    for key in args:
        if key == spec.context_param:
            errors[str(key)] = "is the job's context, which Chime passes to every run; it is not an argument"
        elif key not in known:
            errors[str(key)] = "unknown argument"
    values, field_errors = _check_parameters(spec.parameters, args)
    errors.update(field_errors)
    if spec.validate is not None:
        for key, reason in spec.validate(dict(values)).items():
            errors.setdefault(key, reason)
    if errors:
        raise ArgsError(errors, job=spec.name)
    return values


def _check_parameters(
    parameters: tuple[Parameter, ...], args: dict[Any, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Type-check each declared parameter; return the filled values and the errors."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for parameter in parameters:
        if parameter.name not in args:
            if parameter.required:
                errors[parameter.name] = "required"
            else:
                values[parameter.name] = copy.deepcopy(parameter.default)
            continue
        reason = _type_error(args[parameter.name], parameter.annotation)
        if reason is None:
            values[parameter.name] = args[parameter.name]
        else:
            errors[parameter.name] = reason
    return values, errors


# --------------------------------------------------------------------------- running


def run(name: str, args: dict[str, Any], context: JobContext | None = None) -> Any:
    """Validate ``args``, call the named job with them and return its JSON-serialisable result."""
    spec = get(name)
    if not spec.enabled:
        raise JobDisabledError(disabled_message(spec))
    values = validate_args(name, args)
    if spec.context_param is not None:
        values[spec.context_param] = context if context is not None else JobContext()
    result = spec.func(**values)
    _ensure_json(spec.name, result)
    return result


def _ensure_json(job_name: str, result: Any) -> None:
    """Raise JobError unless ``result`` can be stored as JSON."""
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise JobError(
            f"Job {job_name!r} returned a result that is not JSON-serialisable: {exc}"
        ) from exc
