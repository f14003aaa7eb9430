"""The chaos audit on hand-made logs: what counts as lost, doubled, stuck or an unexplained side effect."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.chaos.audit import Run, audit
from tests.chaos.grid import EXPECTED, TOLERATED, Change, State, Timeline, grid

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
SECOND = timedelta(seconds=1)


def every_2_s(changes: list[Change] | None = None) -> Timeline:
    created = Change(T0 - SECOND, T0, State(True, 2), "created")
    return Timeline(1, "t", "INTERVAL", T0, None, [created, *(changes or [])])


def run(at_s: float, status: str = "SUCCESS", *, attempt: int = 1, trigger: str = "SCHEDULE", message: str = "",
        retry_at: datetime | None = None, run_id: int = 0) -> Run:
    at = T0 + at_s * SECOND
    return Run(run_id or int(at_s * 10) + attempt, 1, at, attempt, status, trigger, message, at, at + SECOND / 10,
               retry_at, "w")


def hits_for(runs: list[Run]) -> dict[str, list[float]]:
    return {"t": [r.started_at.timestamp() + 0.01 for r in runs if r.status == "SUCCESS"]}


def kinds(result) -> list[tuple[str, float]]:
    return sorted((f.kind, (f.at - T0) / SECOND) for f in result.findings)


def test_every_fire_time_run_once_is_clean() -> None:
    runs = [run(s) for s in (2, 4, 6, 8, 10)]
    result = audit([every_2_s()], runs, {}, hits_for(runs), T0 + 10 * SECOND)
    assert result.expected == 5 and result.findings == []


def test_a_fire_time_with_no_record_is_lost() -> None:
    runs = [run(s) for s in (2, 4, 8, 10)]
    assert kinds(audit([every_2_s()], runs, {}, hits_for(runs), T0 + 10 * SECOND)) == [("lost", 6)]


def test_a_coalesced_recovery_run_covers_the_count_its_notification_gives() -> None:
    runs = [run(2), run(8, trigger="RECOVERY"), run(10)]
    covered = audit([every_2_s()], runs, {(1, T0 + 8 * SECOND): 3}, hits_for(runs), T0 + 10 * SECOND)
    short = audit([every_2_s()], runs, {(1, T0 + 8 * SECOND): 2}, hits_for(runs), T0 + 10 * SECOND)
    assert covered.findings == [] and kinds(short) == [("lost", 4)]


def test_a_missed_record_covers_the_count_in_its_message() -> None:
    runs = [run(2), run(8, "SKIPPED", message="missed: 3 occurrence(s) due while the engine was down"), run(10)]
    assert audit([every_2_s()], runs, {}, hits_for(runs), T0 + 10 * SECOND).findings == []


def test_a_fire_time_covered_twice_or_a_second_success_is_doubled() -> None:
    runs = [run(2), run(4), run(6, "SKIPPED", message="missed: 2 occurrence(s)"), run(8), run(10),
            run(10, attempt=2, trigger="RETRY")]
    assert kinds(audit([every_2_s()], runs, {}, hits_for(runs), T0 + 10 * SECOND)) == [("doubled", 4), ("doubled", 10)]


def test_a_promised_retry_that_never_came_and_a_run_left_running_are_stuck() -> None:
    runs = [run(2, "FAILED", message="worker lost", retry_at=T0 + 3 * SECOND), run(4, "RUNNING")]
    assert kinds(audit([every_2_s()], runs, {}, {}, T0 + 4 * SECOND)) == [("stuck", 2), ("stuck", 4)]


def test_a_lost_workers_run_may_leave_one_extra_hit_and_no_more() -> None:
    lost = run(2, "FAILED", message="worker lost", retry_at=T0 + 3 * SECOND)
    retried = Run(99, 1, T0 + 2 * SECOND, 2, "SUCCESS", "RETRY", "", T0 + 3 * SECOND, T0 + 3.1 * SECOND, None, "w")
    one = {"t": [(T0 + 2.05 * SECOND).timestamp(), (T0 + 3.05 * SECOND).timestamp()]}
    two = {"t": one["t"] + [(T0 + 3.5 * SECOND).timestamp()]}
    assert audit([every_2_s()], [lost, retried], {}, one, T0 + 2 * SECOND).findings == []
    assert kinds(audit([every_2_s()], [lost, retried], {}, two, T0 + 2 * SECOND)) == [("side_effect", 3.5)]


def test_a_success_the_server_never_saw_is_a_side_effect_mismatch() -> None:
    runs = [run(2)]
    assert kinds(audit([every_2_s()], runs, {}, {}, T0 + 2 * SECOND)) == [("side_effect", 2)]


def test_fire_times_around_an_edit_are_tolerated_and_the_new_grid_is_owed() -> None:
    edit = Change(T0 + 4.5 * SECOND, T0 + 5 * SECOND, State(True, 3), "interval -> 3")
    points = {(p.at - T0) / SECOND: p.kind for p in grid(every_2_s([edit]), T0 + 12 * SECOND)}
    assert points == {2: EXPECTED, 4: TOLERATED, 6: EXPECTED, 9: EXPECTED, 12: EXPECTED}


def test_an_overlap_skip_with_nothing_queued_or_running_is_false() -> None:
    slow = Run(1, 1, T0 + 2 * SECOND, 1, "SUCCESS", "SCHEDULE", "", T0 + 2 * SECOND, T0 + 5 * SECOND, None, "w")
    justified = run(4, "SKIPPED", message="previous run still running")
    false = run(8, "SKIPPED", message="previous run still running")
    runs = [slow, justified, run(6), false]
    hits = {"t": [(T0 + 2.5 * SECOND).timestamp(), (T0 + 6.01 * SECOND).timestamp()]}
    assert kinds(audit([every_2_s()], runs, {}, hits, T0 + 8 * SECOND)) == [("false_skip", 8)]


def test_an_occurrence_a_worker_dropped_because_the_task_was_then_disabled_is_not_lost() -> None:
    disable = Change(T0 + 8.5 * SECOND, T0 + 9 * SECOND, State(False, 2), "disabled")
    runs = [run(2), run(4)]
    dropped = frozenset({(1, T0 + 6 * SECOND)})
    without_disable = audit([every_2_s()], runs, {}, hits_for(runs), T0 + 6 * SECOND, dropped)
    result = audit([every_2_s([disable])], runs, {}, hits_for(runs), T0 + 6 * SECOND, dropped)
    assert kinds(without_disable) == [("lost", 6)]
    assert kinds(result) == [("dropped", 6)]


def test_an_overlap_skip_that_states_no_count_covers_only_its_own_fire_time() -> None:
    slow = Run(1, 1, T0 + 2 * SECOND, 1, "SUCCESS", "SCHEDULE", "", T0 + 2 * SECOND, T0 + 7 * SECOND, None, "w")
    runs = [slow, run(6, "SKIPPED", message="previous run still running"), run(8)]
    hits = {"t": [(T0 + 2.5 * SECOND).timestamp(), (T0 + 8.01 * SECOND).timestamp()]}
    assert kinds(audit([every_2_s()], runs, {}, hits, T0 + 8 * SECOND)) == [("lost", 4)]


def test_a_skip_that_states_its_count_covers_that_many() -> None:
    slow = Run(1, 1, T0 + 2 * SECOND, 1, "SUCCESS", "SCHEDULE", "", T0 + 2 * SECOND, T0 + 7 * SECOND, None, "w")
    runs = [slow, run(6, "SKIPPED", message="previous run still running: 2 occurrence(s)"), run(8)]
    hits = {"t": [(T0 + 2.5 * SECOND).timestamp(), (T0 + 8.01 * SECOND).timestamp()]}
    assert audit([every_2_s()], runs, {}, hits, T0 + 8 * SECOND).findings == []
