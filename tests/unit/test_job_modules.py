"""Your own job modules: CHIME_JOB_MODULES and the `chime.jobs` entry points register their jobs at
start-up, and a module that cannot be loaded stops start-up with one line naming it and the cause."""
from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import jobs.registry as registry
from chime.config import ConfigError, settings_from_env
from chime.job_modules import JobModuleError, load_job_modules


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path for the test's modules; the registry and sys.modules are as before afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    with registry.temporary():
        yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write_module(folder: Path, source: str) -> str:
    """Write a module with a name no other test uses; return that name."""
    name = f"own_jobs_{uuid.uuid4().hex[:12]}"
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return name


def write_distribution(folder: Path, entry_points: str) -> None:
    """Install (as pip --target would) a distribution whose metadata declares `entry_points`."""
    dist_info = folder / f"own_jobs_dist_{uuid.uuid4().hex[:8]}-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_info.name.split('-')[0]}\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


GREETER = """
    from jobs import job

    @job("{job}")
    def greet(name: str, times: int = 1) -> str:
        '''Greet someone.'''
        return "hello " * times + name
"""


def test_a_module_named_in_chime_job_modules_registers_its_jobs_with_their_parameters(modules: Path) -> None:
    name = write_module(modules, GREETER.format(job="greet_from_setting"))

    assert load_job_modules([name]) == [name]

    spec = registry.get("greet_from_setting")
    assert [p.to_dict() for p in spec.parameters] == [
        {"name": "name", "type": "string", "required": True, "default": None, "nullable": False},
        {"name": "times", "type": "integer", "required": False, "default": 1, "nullable": False}]
    assert registry.run("greet_from_setting", {"name": "Ada", "times": 2}) == "hello hello Ada"


def test_a_module_named_by_a_chime_jobs_entry_point_registers_its_jobs(modules: Path) -> None:
    name = write_module(modules, GREETER.format(job="greet_from_entry_point"))
    write_distribution(modules, f"[chime.jobs]\ngreeter = {name}\n")

    assert name in load_job_modules([])
    assert registry.get("greet_from_entry_point").description == "Greet someone."


def test_a_module_named_twice_is_imported_once(modules: Path) -> None:
    name = write_module(modules, GREETER.format(job="greet_once"))
    write_distribution(modules, f"[chime.jobs]\ngreeter = {name}\n")

    assert load_job_modules([name, name]).count(name) == 1


def test_a_module_that_raises_while_importing_stops_start_up_naming_it_and_the_cause(modules: Path) -> None:
    name = write_module(modules, """
        from jobs import job

        @job("registered_before_the_error")
        def early() -> None:
            '''Registered, then the module fails.'''

        raise RuntimeError("the jobs' settings are missing")
    """)

    with pytest.raises(JobModuleError) as raised:
        load_job_modules([name])

    assert str(raised.value) == (f"CHIME_JOB_MODULES: cannot load job module {name!r}: "
                                 "RuntimeError: the jobs' settings are missing")
    assert isinstance(raised.value, ConfigError)
    assert "registered_before_the_error" not in {spec.name for spec in registry.all_jobs()}


def test_a_module_that_is_not_installed_stops_start_up(modules: Path) -> None:
    with pytest.raises(JobModuleError, match="CHIME_JOB_MODULES: cannot load job module 'no_such_jobs_module': "
                                             "ModuleNotFoundError: No module named 'no_such_jobs_module'"):
        load_job_modules(["no_such_jobs_module"])


def test_a_job_named_like_a_built_in_stops_start_up_naming_both_modules(modules: Path) -> None:
    name = write_module(modules, GREETER.format(job="echo"))

    with pytest.raises(JobModuleError) as raised:
        load_job_modules([name])

    assert str(raised.value) == (f"CHIME_JOB_MODULES: cannot load job module {name!r}: JobError: "
                                 "A job named 'echo' is already registered (by jobs.builtin)")
    assert registry.get("echo").func.__module__ == "jobs.builtin"


def test_two_modules_with_the_same_job_name_stop_start_up_at_the_second(modules: Path) -> None:
    first = write_module(modules, GREETER.format(job="greet_twice"))
    second = write_module(modules, GREETER.format(job="greet_twice"))
    write_distribution(modules, f"[chime.jobs]\nsecond = {second}\n")

    with pytest.raises(JobModuleError) as raised:
        load_job_modules([first])

    message = str(raised.value)
    assert message.startswith(f"chime.jobs entry point 'second' of own_jobs_dist_")
    assert message.endswith(f"cannot load job module {second!r}: JobError: "
                            f"A job named 'greet_twice' is already registered (by {first})")


def test_an_entry_point_naming_a_function_is_refused(modules: Path) -> None:
    name = write_module(modules, GREETER.format(job="greet_by_function"))
    write_distribution(modules, f"[chime.jobs]\ngreeter = {name}:greet\n")

    with pytest.raises(JobModuleError, match=f"entry point 'greeter' .*: '{name}:greet' names an attribute; "
                                             f"a chime.jobs entry point names a module"):
        load_job_modules([])


def test_a_cause_over_several_lines_is_told_on_one_line(modules: Path) -> None:
    name = write_module(modules, "raise ValueError('first line\\nsecond line')\n")

    with pytest.raises(JobModuleError) as raised:
        load_job_modules([name])

    assert str(raised.value).endswith("ValueError: first line second line")


def test_chime_job_modules_is_a_comma_separated_list_of_module_paths(tmp_path: Path) -> None:
    settings = settings_from_env({"CHIME_JOB_MODULES": " acme.jobs, reports ,,acme.jobs"}, str(tmp_path))

    assert settings["JOB_MODULES"] == ("acme.jobs", "reports")
    assert settings_from_env({}, str(tmp_path))["JOB_MODULES"] == ()
    with pytest.raises(ConfigError, match="CHIME_JOB_MODULES: 'acme/jobs.py' is not a module path"):
        settings_from_env({"CHIME_JOB_MODULES": "acme/jobs.py"}, str(tmp_path))
