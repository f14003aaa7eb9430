"""The watchdog's detectors: pure functions of the state a noticing process read, and `now`."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from chime.watchdog import (
    SCHEDULER_UP, WORKERS_BACK, Due, OverrunRule, Running, missed, overrun_threshold_seconds, overruns,
    remembered, remembered_value, repaired_counts, scheduler_step, watched_runs, workers_step,
)

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


# --------------------------------------------------------------------------- scheduler_down


def test_a_stale_scheduler_is_down_at_once_and_says_so_once():
    event, state = scheduler_step({}, "stale", NOW, missing_after_seconds=60)
    assert event == "scheduler_down"
    assert state == {"down": True, "since": "2026-11-30T12:00:00+00:00"}
    again, same = scheduler_step(state, "stale", NOW + timedelta(seconds=5), missing_after_seconds=60)
    assert again is None and same == state


def test_a_scheduler_whose_heartbeat_expired_stays_down_without_a_second_alert():
    _, state = scheduler_step({}, "stale", NOW, missing_after_seconds=60)
    event, _ = scheduler_step(state, "missing", NOW + timedelta(minutes=5), missing_after_seconds=60)
    assert event is None


def test_a_scheduler_never_seen_is_down_only_after_being_missing_for_the_grace():
    event, state = scheduler_step({}, "missing", NOW, missing_after_seconds=60)
    assert event is None and state == {"down": False, "missing_since": "2026-11-30T12:00:00+00:00",
                                       "seen_at": "2026-11-30T12:00:00+00:00"}
    event, state = scheduler_step(state, "missing", NOW + timedelta(seconds=59), missing_after_seconds=60)
    assert event is None
    event, state = scheduler_step(state, "missing", NOW + timedelta(seconds=60), missing_after_seconds=60)
    assert event == "scheduler_down" and state["down"] is True


def test_a_scheduler_that_starts_within_the_grace_raises_nothing():
    _, state = scheduler_step({}, "missing", NOW, missing_after_seconds=60)
    event, state = scheduler_step(state, "ok", NOW + timedelta(seconds=3), missing_after_seconds=60)
    assert event is None and state == {"down": False}


def test_a_scheduler_that_comes_back_ends_the_episode_with_scheduler_up():
    _, state = scheduler_step({}, "stale", NOW, missing_after_seconds=60)
    event, state = scheduler_step(state, "ok", NOW + timedelta(minutes=2), missing_after_seconds=60)
    assert event == SCHEDULER_UP == "scheduler_up"
    assert state == {"down": False}
    event, _ = scheduler_step(state, "ok", NOW + timedelta(minutes=3), missing_after_seconds=60)
    assert event is None


def test_a_second_death_is_a_second_episode():
    _, state = scheduler_step({}, "stale", NOW, missing_after_seconds=60)
    _, state = scheduler_step(state, "ok", NOW + timedelta(minutes=1), missing_after_seconds=60)
    event, _ = scheduler_step(state, "stale", NOW + timedelta(minutes=2), missing_after_seconds=60)
    assert event == "scheduler_down"


# --------------------------------------------------------------------------- no_workers


def test_no_task_worker_for_the_grace_is_no_workers_once_and_a_worker_back_ends_it():
    event, state = workers_step({}, 0, NOW, after_seconds=30)
    assert event is None
    event, state = workers_step(state, 0, NOW + timedelta(seconds=29), after_seconds=30)
    assert event is None
    event, state = workers_step(state, 0, NOW + timedelta(seconds=30), after_seconds=30)
    assert event == "no_workers"
    event, state = workers_step(state, 0, NOW + timedelta(seconds=90), after_seconds=30)
    assert event is None
    event, state = workers_step(state, 2, NOW + timedelta(seconds=95), after_seconds=30)
    assert event == WORKERS_BACK == "workers_back"
    assert state == {"down": False}


def test_a_worker_restarting_within_the_grace_raises_nothing():
    _, state = workers_step({}, 0, NOW, after_seconds=30)
    event, state = workers_step(state, 1, NOW + timedelta(seconds=10), after_seconds=30)
    assert event is None and state == {"down": False}
    event, _ = workers_step(state, 0, NOW + timedelta(seconds=40), after_seconds=30)
    assert event is None  # the grace counts again from the new absence


# --------------------------------------------------------------------------- a cold start (everything was stopped)

BEFORE_THE_STOP = {"down": False, "missing_since": "2026-11-30T11:00:00+00:00", "seen_at": "2026-11-30T11:00:30+00:00"}


def test_a_missing_scheduler_left_in_the_state_before_a_full_stop_is_timed_again_from_the_first_look():
    event, state = scheduler_step(BEFORE_THE_STOP, "missing", NOW, missing_after_seconds=60, max_gap_seconds=15)
    assert event is None
    assert state == {"down": False, "missing_since": "2026-11-30T12:00:00+00:00", "seen_at": "2026-11-30T12:00:00+00:00"}
    event, state = scheduler_step(state, "ok", NOW + timedelta(seconds=4), missing_after_seconds=60, max_gap_seconds=15)
    assert event is None and state == {"down": False}


def test_a_scheduler_missing_across_looks_close_together_is_down_after_the_grace():
    state = {"down": False, "missing_since": "2026-11-30T11:59:05+00:00", "seen_at": "2026-11-30T11:59:55+00:00"}
    event, state = scheduler_step(state, "missing", NOW, missing_after_seconds=60, max_gap_seconds=15)
    assert event is None and state["missing_since"] == "2026-11-30T11:59:05+00:00"
    event, _ = scheduler_step(state, "missing", NOW + timedelta(seconds=5), missing_after_seconds=60,
                              max_gap_seconds=15)
    assert event == "scheduler_down"


def test_a_state_saved_without_its_last_look_counts_only_if_its_start_is_recent():
    old = {"down": False, "missing_since": "2026-11-30T11:00:00+00:00"}
    assert scheduler_step(old, "missing", NOW, missing_after_seconds=60, max_gap_seconds=15)[0] is None
    recent = {"down": False, "none_since": "2026-11-30T11:59:50+00:00"}
    event, state = workers_step(recent, 0, NOW, after_seconds=30, max_gap_seconds=15)
    assert event is None and state["none_since"] == "2026-11-30T11:59:50+00:00"


def test_no_workers_left_in_the_state_before_a_full_stop_raises_nothing_when_workers_start_with_it():
    before = {"down": False, "none_since": "2026-11-30T11:00:00+00:00", "seen_at": "2026-11-30T11:00:30+00:00"}
    event, state = workers_step(before, 0, NOW, after_seconds=30, max_gap_seconds=15)
    assert event is None and state["none_since"] == "2026-11-30T12:00:00+00:00"
    event, state = workers_step(state, 1, NOW + timedelta(seconds=5), after_seconds=30, max_gap_seconds=15)
    assert event is None and state == {"down": False}


# --------------------------------------------------------------------------- missed


def test_an_occurrence_past_its_grace_with_no_run_is_missed():
    due = Due(7, ago(400), 300, "schedule")
    assert missed([due], set(), {}, NOW) == [due]


def test_an_occurrence_within_its_grace_is_not_missed_yet():
    assert missed([Due(7, ago(300), 300, "schedule")], set(), {}, NOW) == []
    assert missed([Due(7, ago(299), 300, "schedule")], set(), {}, NOW) == []


def test_an_occurrence_with_no_grace_is_missed_only_ten_seconds_after_it_was_due():
    assert missed([Due(7, ago(10), 0, "schedule")], set(), {}, NOW) == []
    assert missed([Due(7, ago(11), 0, "queue")], set(), {}, NOW) == [Due(7, ago(11), 0, "queue")]


def test_an_occurrence_that_has_a_run_is_not_missed():
    at = ago(400)
    assert missed([Due(7, at, 300, "schedule")], {(7, at)}, {}, NOW) == []


def test_a_missed_occurrence_is_alerted_once_but_the_next_one_again():
    at = ago(400)
    alerted = remembered({"7": ["2026-11-30T11:53:20+00:00"]}, [], NOW)
    assert alerted == {(7, at)}
    assert missed([Due(7, at, 300, "schedule")], set(), alerted, NOW) == []
    later = Due(7, ago(320), 30, "queue")
    assert missed([later], set(), alerted, NOW) == [later]


def test_two_occurrences_of_one_task_that_never_started_are_each_missed_once():
    queued, scheduled = Due(7, ago(120), 10, "queue"), Due(7, ago(60), 10, "schedule")
    assert missed([queued, scheduled], set(), set(), NOW) == [queued, scheduled]
    alerted = remembered(remembered_value({(7, ago(120)), (7, ago(60))}), [queued, scheduled], NOW)
    assert missed([queued, scheduled], set(), alerted, NOW + timedelta(seconds=5)) == []
    next_one = Due(7, ago(0), 10, "schedule")
    assert missed([queued, next_one], set(), alerted, NOW + timedelta(seconds=20)) == [next_one]


def test_an_older_occurrence_seen_only_after_a_newer_one_was_alerted_is_still_missed_once():
    alerted = {(7, ago(60))}
    older = Due(7, ago(120), 10, "queue")
    assert missed([older], set(), alerted, NOW) == [older]


def test_the_missed_state_is_kept_per_occurrence_and_reads_its_earlier_form():
    assert remembered_value({(7, ago(60)), (7, ago(120)), (3, ago(5))}) == {
        "3": ["2026-11-30T11:59:55+00:00"], "7": ["2026-11-30T11:58:00+00:00", "2026-11-30T11:59:00+00:00"]}
    assert remembered({"7": "2026-11-30T11:59:00+00:00"}, [], NOW) == {(7, ago(60))}


def test_an_alerted_occurrence_is_forgotten_after_two_days_unless_it_is_still_seen_due():
    three_days = 3 * 86400
    value = {"7": ["2026-11-27T12:00:00+00:00", "2026-11-30T11:00:00+00:00"], "8": ["2026-11-27T12:00:00+00:00"]}
    still_queued = Due(8, ago(three_days), 10, "queue")
    assert remembered(value, [still_queued], NOW) == {(7, ago(3600)), (8, ago(three_days))}


def test_the_same_occurrence_seen_in_the_schedule_and_a_queue_is_one_miss_oldest_first():
    a, b = Due(3, ago(100), 30, "queue"), Due(2, ago(200), 30, "schedule")
    assert missed([a, b, Due(3, ago(100), 30, "schedule")], set(), {}, NOW) == [b, a]


# --------------------------------------------------------------------------- overrun


def test_the_overrun_threshold_is_the_configured_time_else_the_run_timeout():
    assert overrun_threshold_seconds(300, 0) == 300
    assert overrun_threshold_seconds(300, 120) == 120


def test_a_rules_own_overrun_time_comes_before_the_configured_time_and_the_timeout():
    assert overrun_threshold_seconds(300, 120, rule_seconds=45) == 45
    assert overrun_threshold_seconds(300, 0, rule_seconds=900) == 900  # also later than the timeout
    assert overrun_threshold_seconds(300, 120, rule_seconds=None) == 120


def test_a_run_past_its_threshold_overruns_once():
    long_run, short_run = Running(1, 5, ago(301), 300), Running(2, 5, ago(200), 300)
    assert overruns([long_run, short_run], set(), NOW) == [long_run]
    assert overruns([long_run, short_run], {"1:-"}, NOW) == []


def test_a_run_no_rule_watches_for_overrun_is_watched_with_the_global_threshold():
    assert watched_runs(7, 5, ago(10), 600, [], configured_seconds=0) == [Running(7, 5, ago(10), 600.0)]
    assert watched_runs(7, 5, ago(10), 600, [], configured_seconds=90) == [Running(7, 5, ago(10), 90.0)]


def test_a_run_is_watched_once_per_rule_with_that_rules_threshold_else_the_global_one():
    rules = [OverrunRule(rule_id=3, after_seconds=60), OverrunRule(rule_id=4, after_seconds=None)]
    assert watched_runs(7, 5, ago(10), 600, rules, configured_seconds=0) == [
        Running(7, 5, ago(10), 60.0, rule_id=3), Running(7, 5, ago(10), 600.0, rule_id=4)]
    assert watched_runs(7, 5, ago(10), 600, rules, configured_seconds=300)[1].threshold_seconds == 300


def test_each_rule_hears_of_an_overrun_when_its_own_threshold_passes_once():
    # one run, started 2 min ago; rule 3 wants to know after 1 min, rule 4 after 5 min
    early, late = Running(7, 5, ago(120), 60, rule_id=3), Running(7, 5, ago(120), 300, rule_id=4)
    assert overruns([early, late], set(), NOW) == [early]
    assert overruns([early, late], {"7:3"}, NOW) == []
    assert overruns([early, late], {"7:3"}, NOW + timedelta(minutes=3, seconds=1)) == [late]
    assert overruns([early, late], {"7:3", "7:4"}, NOW + timedelta(hours=1)) == []


def test_a_run_exactly_at_its_rules_threshold_is_not_overrunning_yet():
    at_threshold = Running(8, 5, ago(60), 60, rule_id=3)
    assert overruns([at_threshold], set(), NOW) == []
    assert overruns([at_threshold], set(), NOW + timedelta(seconds=1)) == [at_threshold]


# --------------------------------------------------------------------------- reconcile_repaired


def test_a_reconcile_pass_that_repaired_nothing_has_no_counts():
    assert repaired_counts({"tasks_checked": 40, "pending_restored": 0, "executions_lost": 0}) == {}


def test_a_reconcile_pass_reports_what_it_repaired_not_what_it_checked():
    report = {"tasks_checked": 40, "pending_restored": 3, "executions_lost": 1, "orphans_removed": 0}
    assert repaired_counts(report) == {"pending_restored": 3, "executions_lost": 1}
