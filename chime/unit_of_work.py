"""One unit of work: the caller's transaction, committed once, with effects that wait for the commit.

The use-cases in :mod:`chime.services` join the caller's transaction: they flush, never commit. The
caller -- an API or admin view, a CLI command, an RQ job -- wraps what belongs together in
``with unit_of_work():``; it commits once at the end, or rolls everything back when anything raised.

What cannot be rolled back (Redis: replacing or removing a task's pending occurrence) is registered
with :func:`after_commit` and runs only once the commit succeeded; a rolled-back unit discards it, so
Redis is never touched for a change the database did not keep. Units nest: an inner one joins the
outer one, which alone commits and runs the effects.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from chime.extensions import db

log = logging.getLogger(__name__)

DEPTH = "chime.unit_of_work.depth"      # session.info: how many units are open
EFFECTS = "chime.unit_of_work.effects"  # session.info: what to do once the outermost unit committed

Effect = Callable[[], None]


class NoUnitOfWork(RuntimeError):
    """An effect was registered outside ``with unit_of_work():``: nothing would ever commit it."""


@contextmanager
def unit_of_work() -> Iterator[None]:
    """Run the block as one transaction: commit once at the end, roll back on any error.

    The outermost unit commits, then runs the effects registered meanwhile (in order); a failing
    effect is logged and the others still run -- the change is committed, and the reconciler puts
    Redis right later. Nested units only join.
    """
    info = db.session.info
    depth = info.get(DEPTH, 0)
    if depth == 0:
        info[EFFECTS] = []
    info[DEPTH] = depth + 1
    try:
        yield
        if depth == 0:
            db.session.commit()
    except BaseException:
        if depth == 0:
            db.session.rollback()
            info[EFFECTS] = []
        raise
    finally:
        info[DEPTH] = depth
    if depth == 0:
        _run_effects(info.pop(EFFECTS, []))


def after_commit(effect: Effect) -> None:
    """Run `effect` once the current unit of work has committed; never if it rolls back."""
    if not db.session.info.get(DEPTH):
        raise NoUnitOfWork("a change with side effects must run inside `with unit_of_work():`")
    db.session.info[EFFECTS].append(effect)


def _run_effects(effects: list[Effect]) -> None:
    for effect in effects:
        try:
            effect()
        except Exception:  # the change is committed: one failed effect must not hide it or stop the others
            log.exception("An effect after a commit failed; the reconciler repairs what it left undone")
