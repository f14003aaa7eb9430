"""Bench-only counters inside the engine processes: SQL statements, commits and Redis commands.

Python's `site` module imports `sitecustomize` at start-up from the first directory of sys.path
that has one; bench/herd.py puts bench/hooks on PYTHONPATH of the scheduler and worker processes
and sets CHIME_BENCH_COUNTS_DIR, so the Procfile commands run unchanged and no product code knows
about this. Without CHIME_BENCH_COUNTS_DIR this module does nothing.

Counts are kept per bucket: the function of the RQ job being run (`Job._execute`, i.e. the job's
own code: Chime's executor, the reconciler) or "outside a job" (RQ's worker loop around it, or the
scheduler's whole process). Per bucket: SQL statements by their first word (SQLAlchemy
`before_cursor_execute`, an executemany counts once), and by their text, commits and rollbacks (engine events),
Redis commands sent and round trips (redis-py `send_command` / `pack_commands` /
`send_packed_command`; a pipeline is one round trip, a Lua script one command, also counted as a
script call), and jobs run.
A daemon thread writes them every second (~0.5 % of a busy worker's samples), and once at exit, to <dir>/<pid>.json (replaced atomically),
so the benchmark can take a snapshot before and after the herd.
"""
import os

_DIR = os.environ.get("CHIME_BENCH_COUNTS_DIR")
OUTSIDE = "outside a job"
STATEMENT_CHARS = 90  # statements are also counted by their text, cut to this length
WRITE_EVERY_SECONDS = 1.0  # a snapshot of the counters on disk is at most this old
SCRIPT_COMMANDS = {"EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO", "FCALL", "FCALL_RO"}


def _install(directory: str) -> None:
    import atexit
    import json
    import sys
    import threading
    import time
    from collections import Counter, defaultdict

    counts: dict[str, Counter] = defaultdict(Counter)
    current = [OUTSIDE]

    def bucket() -> Counter:
        return counts[current[0]]

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "before_cursor_execute")
    def _statement(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        words = statement.split()
        counter = counts[current[0]]
        counter["sql " + (words[0].upper() if words else "?")] += 1
        counter["sql"] += 1
        counter["statement: " + " ".join(words)[:STATEMENT_CHARS]] += 1

    @event.listens_for(Engine, "commit")
    def _commit(conn):  # noqa: ANN001
        bucket()["commits"] += 1

    @event.listens_for(Engine, "rollback")
    def _rollback(conn):  # noqa: ANN001
        bucket()["rollbacks"] += 1

    from redis.connection import AbstractConnection

    send_command = AbstractConnection.send_command
    pack_commands = AbstractConnection.pack_commands
    send_packed_command = AbstractConnection.send_packed_command

    def count_command(counter: Counter, args: tuple) -> None:
        counter["redis commands"] += 1
        if args and str(args[0]).upper() in SCRIPT_COMMANDS:
            counter["redis script calls"] += 1

    def counted_send_command(self, *args, **kwargs):  # noqa: ANN001
        count_command(bucket(), args)
        return send_command(self, *args, **kwargs)

    def counted_pack_commands(self, commands):  # noqa: ANN001
        commands = list(commands)
        counter = bucket()
        for args in commands:  # each a tuple of a command's arguments
            count_command(counter, args)
        return pack_commands(self, commands)

    def counted_send_packed_command(self, command, check_health=True):  # noqa: ANN001
        bucket()["redis round trips"] += 1
        return send_packed_command(self, command, check_health)

    AbstractConnection.send_command = counted_send_command
    AbstractConnection.pack_commands = counted_pack_commands
    AbstractConnection.send_packed_command = counted_send_packed_command

    from rq.job import Job

    execute = Job._execute

    def counted_execute(self):  # noqa: ANN001
        previous, current[0] = current[0], self.func_name
        counts[current[0]]["jobs"] += 1
        try:
            return execute(self)
        finally:
            current[0] = previous

    Job._execute = counted_execute

    path = os.path.join(directory, f"{os.getpid()}.json")

    def write() -> None:
        snapshot = {"pid": os.getpid(), "argv": sys.argv, "written_at": time.time(),
                    "counts": {name: dict(values) for name, values in list(counts.items())}}
        temporary = path + ".tmp"
        with open(temporary, "w") as out:
            json.dump(snapshot, out)
        os.replace(temporary, path)

    def keep_writing() -> None:
        while True:
            time.sleep(WRITE_EVERY_SECONDS)
            try:
                write()
            except (OSError, RuntimeError):  # a dict changed size mid-copy: next time
                pass

    threading.Thread(target=keep_writing, name="bench-counts", daemon=True).start()
    atexit.register(write)


if _DIR:
    _install(_DIR)
