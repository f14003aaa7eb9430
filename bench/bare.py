"""A trivial job function for the plain-RQ and plain-rq-scheduler baselines."""


def noop() -> None:
    """Do nothing."""
    return None
