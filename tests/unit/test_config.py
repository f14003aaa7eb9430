"""Settings from the environment: a bad value stops start-up with a message naming the variable."""
from __future__ import annotations

import pytest

from chime.config import ConfigError, settings_from_env


@pytest.mark.parametrize("name", ["RECONCILE_INTERVAL_SECONDS", "RETENTION_INTERVAL_SECONDS"])
@pytest.mark.parametrize("raw", ["0", "-60", "soon", "1.5"])
def test_a_periodic_interval_must_be_a_whole_number_of_seconds_of_at_least_one(name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=f"{name} must be a whole number of at least 1, not '{raw}'"):
        settings_from_env({name: raw}, "/tmp")


def test_log_retention_of_zero_or_fewer_days_is_accepted_it_turns_the_prune_off() -> None:
    # README "CLI": the scheduler prunes every RETENTION_INTERVAL_SECONDS unless LOG_RETENTION_DAYS <= 0
    assert settings_from_env({"LOG_RETENTION_DAYS": "0"}, "/tmp")["LOG_RETENTION_DAYS"] == 0
    assert settings_from_env({"LOG_RETENTION_DAYS": "-1"}, "/tmp")["LOG_RETENTION_DAYS"] == -1
    with pytest.raises(ConfigError, match="LOG_RETENTION_DAYS must be a whole number, not 'a month'"):
        settings_from_env({"LOG_RETENTION_DAYS": "a month"}, "/tmp")


def test_unset_or_blank_intervals_take_their_documented_defaults() -> None:
    settings = settings_from_env({"RECONCILE_INTERVAL_SECONDS": " "}, "/tmp")
    assert settings["RECONCILE_INTERVAL_SECONDS"] == 60  # README "Configuration"
    assert settings["RETENTION_INTERVAL_SECONDS"] == 3600
    assert settings["LOG_RETENTION_DAYS"] == 30


def test_a_set_interval_is_taken_as_given() -> None:
    assert settings_from_env({"RECONCILE_INTERVAL_SECONDS": "15"}, "/tmp")["RECONCILE_INTERVAL_SECONDS"] == 15
