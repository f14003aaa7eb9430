"""Tests for the job registry: registration, introspection, validation and running."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs import registry
from jobs.registry import (
    ArgsError,
    JobContext,
    JobDisabledError,
    JobError,
    Parameter,
    UnknownJobError,
    job,
)

FEATURE_ENV = "CHIME_TEST_FEATURE_ENABLED"


@pytest.fixture(autouse=True)
def isolated_registry():
    """Forget every job a test registers once the test ends."""
    with registry.temporary():
        yield


def _typed(
    count: int,
    ratio: float,
    label: str,
    flag: bool,
    options: dict,
    items: list,
    labels: dict[str, str],
    numbers: list[int],
    anything: Any,
    maybe: int | None,
) -> None:
    """Accept one parameter of every supported type."""


def _params(name: str) -> dict[str, Parameter]:
    return {parameter.name: parameter for parameter in registry.get(name).parameters}


# --------------------------------------------------------------------------- registration


def test_job_decorator_registers_function_under_given_name():
    @job("greet")
    def hello(name: str) -> str:
        """Say hello."""
        return f"hello {name}"

    assert registry.get("greet").func is hello


def test_job_name_defaults_to_function_name():
    @job()
    def tidy_up() -> None:
        """Tidy up."""

    assert registry.get("tidy_up").func is tidy_up


def test_bare_job_decorator_registers_function():
    @job
    def bare() -> None:
        """Bare."""

    assert registry.get("bare").func is bare


def test_job_decorator_returns_function_unchanged():
    def original(x: int) -> int:
        """Double x."""
        return x * 2

    assert job("double")(original) is original
    assert original(4) == 8


def test_description_is_first_docstring_line():
    @job("documented")
    def documented() -> None:
        """Do the documented thing.

        More detail that is not part of the description.
        """

    assert registry.get("documented").description == "Do the documented thing."


def test_explicit_description_overrides_docstring():
    @job("described", description="Custom text")
    def described() -> None:
        """Docstring text."""

    assert registry.get("described").description == "Custom text"


@pytest.mark.parametrize(
    ("name", "expected_type"),
    [
        ("count", "integer"),
        ("ratio", "number"),
        ("label", "string"),
        ("flag", "boolean"),
        ("options", "object"),
        ("items", "array"),
        ("labels", "object"),
        ("numbers", "array"),
        ("anything", "any"),
        ("maybe", "integer"),
    ],
)
def test_parameter_types_are_introspected_from_type_hints(name, expected_type):
    job("typed")(_typed)
    assert _params("typed")[name].type == expected_type


def test_optional_annotation_makes_parameter_nullable():
    job("typed")(_typed)
    params = _params("typed")
    assert params["maybe"].nullable is True
    assert params["count"].nullable is False


def test_defaults_and_required_flags_are_introspected():
    @job("defaults")
    def defaults(needed: str, *, retries: int = 3, tags: list[str] | None = None) -> None:
        """Have defaults."""

    params = _params("defaults")
    assert params["needed"] == Parameter("needed", "string", required=True)
    assert params["retries"] == Parameter("retries", "integer", required=False, default=3)
    assert params["tags"] == Parameter("tags", "array", required=False, nullable=True)


def test_context_parameter_is_hidden_from_public_parameters():
    @job("contextual")
    def contextual(value: int, context: JobContext) -> int:
        """Use the context."""
        return value + context.attempt

    spec = registry.get("contextual")
    assert [parameter.name for parameter in spec.parameters] == ["value"]
    assert spec.context_param == "context"


def test_spec_to_dict_is_json_ready():
    @job("shaped")
    def shaped(size: int = 2, note: str | None = None) -> None:
        """Have a shape."""

    assert registry.get("shaped").to_dict() == {
        "name": "shaped",
        "description": "Have a shape.",
        "parameters": [
            {"name": "size", "type": "integer", "required": False, "default": 2, "nullable": False},
            {"name": "note", "type": "string", "required": False, "default": None, "nullable": True},
        ],
    }
    json.dumps(registry.get("shaped").to_dict())


def test_star_args_are_rejected_at_registration():
    def splat(*values: int) -> None:
        """Take anything."""

    with pytest.raises(JobError, match=r"\*values"):
        job("splat")(splat)


def test_star_star_kwargs_are_rejected_at_registration():
    def splat(**options: int) -> None:
        """Take anything."""

    with pytest.raises(JobError, match=r"\*\*options"):
        job("splat")(splat)


def test_unsupported_annotation_is_rejected_at_registration():
    def odd(value: set[int]) -> None:
        """Take a set."""

    with pytest.raises(JobError, match="Unsupported annotation"):
        job("odd")(odd)


def test_default_that_is_not_json_is_rejected_at_registration():
    def odd(value: Any = object()) -> None:
        """Take an object."""

    with pytest.raises(JobError, match="JSON"):
        job("odd")(odd)


def test_default_that_contradicts_annotation_is_rejected_at_registration():
    def odd(value: int = "three") -> None:  # type: ignore[assignment]
        """Take an int."""

    with pytest.raises(JobError, match="does not match"):
        job("odd")(odd)


def test_duplicate_name_raises_job_error():
    @job("twice")
    def first() -> None:
        """First."""

    with pytest.raises(JobError, match="already registered"):

        @job("twice")
        def second() -> None:
            """Second."""


def test_temporary_registry_forgets_jobs_registered_inside():
    with registry.temporary():

        @job("fleeting")
        def fleeting() -> None:
            """Vanish."""

        assert registry.get("fleeting")
    with pytest.raises(UnknownJobError):
        registry.get("fleeting")


def test_temporary_registers_given_specs():
    def given_spec() -> None:
        """Be given."""

    spec = registry.make_spec(given_spec)
    with registry.temporary(spec):
        assert registry.get("given_spec") is spec
    assert "given_spec" not in [s.name for s in registry.all_jobs()]


def test_unregister_removes_job():
    @job("removable")
    def removable() -> None:
        """Be removed."""

    registry.unregister("removable")
    with pytest.raises(UnknownJobError):
        registry.get("removable")


# --------------------------------------------------------------------------- lookup


def test_unknown_job_error_lists_known_jobs():
    with pytest.raises(UnknownJobError) as caught:
        registry.get("nope")
    error = caught.value
    assert error.name == "nope"
    assert str(error) == f"Unknown job 'nope'. Known jobs: {', '.join(error.known)}"
    assert {"echo", "fail", "noop", "sleep"} <= set(error.known)
    assert isinstance(error, LookupError)


def test_unknown_job_name_that_is_not_a_string_raises_unknown_job_error():
    with pytest.raises(UnknownJobError):
        registry.get(["not", "hashable"])  # type: ignore[arg-type]


def test_all_jobs_are_sorted_by_name():
    names = [spec.name for spec in registry.all_jobs()]
    assert names == sorted(names)


def test_errors_survive_pickling():
    error = pickle.loads(pickle.dumps(ArgsError({"x": "required"}, job="echo")))
    assert error.fields == {"x": "required"}
    assert pickle.loads(pickle.dumps(UnknownJobError("x", ("echo",)))).known == ("echo",)


# --------------------------------------------------------------------------- validate_args


@pytest.fixture
def typed_job() -> str:
    """Register the every-type job and return its name."""
    job("typed")(_typed)
    return "typed"


def _valid_typed_args(**overrides: Any) -> dict[str, Any]:
    args = {
        "count": 1,
        "ratio": 0.5,
        "label": "x",
        "flag": True,
        "options": {"a": [1]},
        "items": [1, "two"],
        "labels": {"env": "prod"},
        "numbers": [1, 2],
        "anything": None,
        "maybe": None,
    }
    return {**args, **overrides}


def _fields(name: str, args: Any) -> dict[str, str]:
    with pytest.raises(ArgsError) as caught:
        registry.validate_args(name, args)
    return caught.value.fields


def test_valid_args_are_returned_unchanged(typed_job):
    assert registry.validate_args(typed_job, _valid_typed_args()) == _valid_typed_args()


@pytest.mark.parametrize("args", [None, [], "text", 3, True])
def test_args_must_be_an_object(typed_job, args):
    assert _fields(typed_job, args) == {"args": "must be an object"}


def test_unknown_argument_is_reported(typed_job):
    assert _fields(typed_job, _valid_typed_args(extra=1)) == {"extra": "unknown argument"}


def test_missing_required_argument_is_reported(typed_job):
    args = _valid_typed_args()
    del args["count"]
    assert _fields(typed_job, args) == {"count": "required"}


def test_all_field_errors_are_collected_before_raising(typed_job):
    args = _valid_typed_args(ratio="fast", flag=1, extra=True)
    del args["label"]
    assert _fields(typed_job, args) == {
        "extra": "unknown argument",
        "ratio": "must be a number",
        "label": "required",
        "flag": "must be a boolean",
    }


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_not_integers(typed_job, value):
    assert _fields(typed_job, _valid_typed_args(count=value)) == {"count": "must be an integer"}


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_not_numbers(typed_job, value):
    assert _fields(typed_job, _valid_typed_args(ratio=value)) == {"ratio": "must be a number"}


def test_floats_are_not_integers(typed_job):
    assert _fields(typed_job, _valid_typed_args(count=1.0)) == {"count": "must be an integer"}


def test_integers_are_accepted_as_numbers(typed_job):
    assert registry.validate_args(typed_job, _valid_typed_args(ratio=7))["ratio"] == 7


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_floats_are_not_numbers(typed_job, value):
    assert _fields(typed_job, _valid_typed_args(ratio=value)) == {"ratio": "must be a number"}


def test_null_is_rejected_unless_nullable(typed_job):
    assert _fields(typed_job, _valid_typed_args(count=None)) == {"count": "must not be null"}
    assert registry.validate_args(typed_job, _valid_typed_args(maybe=None))["maybe"] is None


def test_nullable_type_error_mentions_null(typed_job):
    assert _fields(typed_job, _valid_typed_args(maybe="x")) == {"maybe": "must be an integer or null"}


def test_list_elements_are_type_checked(typed_job):
    assert _fields(typed_job, _valid_typed_args(numbers=[1, True])) == {
        "numbers": "must be an array of integers"
    }


def test_dict_values_are_type_checked(typed_job):
    assert _fields(typed_job, _valid_typed_args(labels={"a": 1})) == {
        "labels": "must be an object with string values"
    }


def test_defaults_are_filled_in_and_not_shared():
    @job("defaults")
    def defaults(tags: list[str] = ["a"], limit: int = 5) -> None:  # noqa: B006
        """Have defaults."""

    first = registry.validate_args("defaults", {})
    assert first == {"tags": ["a"], "limit": 5}
    first["tags"].append("mutated")
    assert registry.validate_args("defaults", {})["tags"] == ["a"]


def test_validate_hook_errors_are_reported_with_type_errors():
    def positive(args: dict[str, Any]) -> dict[str, str]:
        return {"size": "must be positive"} if args.get("size", 1) <= 0 else {}

    @job("sized", validate=positive)
    def sized(size: int, label: str) -> None:
        """Have a size."""

    assert _fields("sized", {"size": -1, "label": 3}) == {
        "label": "must be a string",
        "size": "must be positive",
    }


def test_validate_hook_only_sees_well_typed_args():
    seen: list[dict[str, Any]] = []

    @job("watched", validate=lambda args: seen.append(args) or {})
    def watched(size: int, label: str = "x") -> None:
        """Be watched."""

    _fields("watched", {"size": "big"})
    assert seen == [{"label": "x"}]


def test_validate_args_for_unknown_job_raises_unknown_job_error():
    with pytest.raises(UnknownJobError):
        registry.validate_args("nope", {})


def test_args_error_message_is_a_sentence(typed_job):
    with pytest.raises(ArgsError) as caught:
        registry.validate_args(typed_job, _valid_typed_args(count="x", extra=1))
    assert str(caught.value) == (
        "Invalid arguments for job 'typed': extra: unknown argument; count: must be an integer."
    )
    assert isinstance(caught.value, ValueError)


# --------------------------------------------------------------------------- enabled_env


@pytest.fixture
def guarded_job() -> str:
    """Register a job that only runs when FEATURE_ENV is set."""

    @job("guarded", enabled_env=FEATURE_ENV)
    def guarded() -> str:
        """Run only when allowed."""
        return "ran"

    return "guarded"


def test_env_guarded_job_is_disabled_when_env_is_unset(monkeypatch, guarded_job):
    monkeypatch.delenv(FEATURE_ENV, raising=False)
    assert registry.is_enabled(guarded_job) is False
    assert _fields(guarded_job, {}) == {"job": f"guarded jobs are disabled; set {FEATURE_ENV}=true"}
    with pytest.raises(JobDisabledError, match=f"Guarded jobs are disabled; set {FEATURE_ENV}=true"):
        registry.run(guarded_job, {})


@pytest.mark.parametrize("value", ["true", "1", "yes", "TRUE", " Yes "])
def test_env_guarded_job_is_enabled_by_truthy_env(monkeypatch, guarded_job, value):
    monkeypatch.setenv(FEATURE_ENV, value)
    assert registry.is_enabled(guarded_job) is True
    assert registry.run(guarded_job, {}) == "ran"


@pytest.mark.parametrize("value", ["false", "0", "no", ""])
def test_env_guarded_job_stays_disabled_by_falsy_env(monkeypatch, guarded_job, value):
    monkeypatch.setenv(FEATURE_ENV, value)
    assert registry.is_enabled(guarded_job) is False


# --------------------------------------------------------------------------- run


def test_run_calls_job_with_validated_args_and_defaults():
    @job("adder")
    def adder(a: int, b: int = 10) -> dict[str, int]:
        """Add."""
        return {"sum": a + b}

    assert registry.run("adder", {"a": 1}) == {"sum": 11}


def test_run_passes_context_to_context_parameter():
    @job("contextual")
    def contextual(*, context: JobContext) -> dict[str, Any]:
        """Report the context."""
        return {"task": context.task_id, "attempt": context.attempt}

    context = JobContext(task_id=7, execution_id=9, attempt=3)
    assert registry.run("contextual", {}, context=context) == {"task": 7, "attempt": 3}


def test_run_supplies_default_context_when_none_given():
    @job("contextual")
    def contextual(context: JobContext) -> int:
        """Report the attempt."""
        return context.attempt

    assert registry.run("contextual", {}) == 1


def test_context_cannot_be_passed_as_an_argument():
    @job("contextual")
    def contextual(context: JobContext) -> int:
        """Report the attempt."""
        return context.attempt

    assert _fields("contextual", {"context": {"attempt": 5}}) == {
        "context": "is the job's context, which Chime passes to every run; it is not an argument"}


def test_run_rejects_invalid_args_without_calling_job():
    calls: list[int] = []

    @job("counted")
    def counted(n: int) -> None:
        """Count."""
        calls.append(n)

    with pytest.raises(ArgsError):
        registry.run("counted", {"n": "one"})
    assert calls == []


def test_run_rejects_result_that_is_not_json():
    @job("leaky")
    def leaky() -> object:
        """Return an object."""
        return object()

    with pytest.raises(JobError, match="not JSON-serialisable"):
        registry.run("leaky", {})


def test_run_of_unknown_job_raises_unknown_job_error():
    with pytest.raises(UnknownJobError):
        registry.run("nope", {})


# --------------------------------------------------------------------------- fuzzing

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@st.composite
def job_calls(draw: st.DrawFn) -> tuple[Any, Any]:
    """Draw a job name and arguments that are often, but not always, well-formed."""
    specs = registry.all_jobs()
    spec = draw(st.sampled_from(specs))
    name = draw(st.sampled_from([spec.name]) | st.text(max_size=10) | JSON_VALUES)
    keys = st.sampled_from([p.name for p in spec.parameters] or ["x"]) | st.text(max_size=10)
    args = draw(st.dictionaries(keys, JSON_VALUES, max_size=6) | JSON_VALUES)
    return name, args


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=job_calls(), shell_enabled=st.booleans())
def test_validate_args_never_raises_anything_but_job_errors(monkeypatch, call, shell_enabled):
    monkeypatch.setenv("ALLOW_SHELL_JOBS", "true" if shell_enabled else "false")
    name, args = call
    try:
        result = registry.validate_args(name, args)
    except (ArgsError, UnknownJobError) as error:
        assert str(error)
    else:
        assert isinstance(result, dict)
        json.dumps(result)
