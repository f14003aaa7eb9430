"""Redis memory per scheduled task, against rq-scheduler's own enqueue_at in the same run.

Chime keeps, per enabled task, one pending occurrence: an RQ job hash (rq:job:<id>), a member of
rq-scheduler's sorted set and a field of Chime's pending index. The baseline is what rq-scheduler
itself stores for one job scheduled with `Scheduler.enqueue_at` (a job hash and a sorted-set member),
measured on its own fresh Redis in the same run.

Figures: used_memory before and after (INFO memory, after the writes), divided by the count; and a
breakdown by structure from MEMORY USAGE (the sorted set and the pending hash whole; job hashes sampled
and extrapolated), with the size of each field of one job hash.

Usage (from the repo root):  .venv/bin/python bench/redis_memory.py --tasks 100000 [--baseline-jobs 20000]
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from bench.common import log  # noqa: E402
from bench.reconcile import mixed_rows  # noqa: E402

SAMPLE = 2000


def used_memory(connection: Any) -> int:
    return int(connection.info("memory")["used_memory"])


def sampled_bytes(connection: Any, keys: list[bytes]) -> float:
    """Mean MEMORY USAGE (SAMPLES 0: every element) of up to SAMPLE of `keys`."""
    picked = random.Random(1).sample(keys, min(SAMPLE, len(keys)))
    with connection.pipeline(transaction=False) as pipe:
        for key in picked:
            pipe.memory_usage(key, samples=0)
        sizes = pipe.execute()
    return sum(sizes) / len(sizes)


def field_sizes(connection: Any, key: bytes) -> dict[str, int]:
    return {name.decode(): len(value) for name, value in sorted(connection.hgetall(key).items())}


def chime_figures(env: common.Env, tasks: int) -> dict[str, Any]:
    from chime import occurrence as occ

    before = used_memory(env.redis)
    common.bulk_create_tasks(mixed_rows(tasks, common.utcnow()), common.utcnow())
    after = used_memory(env.redis)
    job_keys = [b"rq:job:" + job_id for job_id in env.redis.zrange(occ.SCHEDULED_KEY, 0, -1)]
    job_mean = sampled_bytes(env.redis, job_keys)
    return {
        "tasks": tasks, "scheduled": len(job_keys),
        "bytes_per_task": (after - before) / tasks,
        "breakdown_per_task": {
            "job_hash": job_mean,
            "scheduled_set": env.redis.memory_usage(occ.SCHEDULED_KEY, samples=0) / tasks,
            "pending_index": env.redis.memory_usage(occ.PENDING_KEY, samples=0) / tasks,
        },
        "job_fields": field_sizes(env.redis, job_keys[0]),
    }


def baseline_figures(env: common.Env, jobs: int) -> dict[str, Any]:
    from rq_scheduler import Scheduler

    from bench.bare import noop

    env.redis.flushall()
    before = used_memory(env.redis)
    ids = common.rq_scheduler_jobs(env.redis, jobs, noop)
    after = used_memory(env.redis)
    keys = [f"rq:job:{job_id}".encode() for job_id in ids]
    return {
        "jobs": jobs, "bytes_per_job": (after - before) / jobs,
        "breakdown_per_job": {
            "job_hash": sampled_bytes(env.redis, keys),
            "scheduled_set": env.redis.memory_usage(Scheduler.scheduled_jobs_key, samples=0) / jobs,
        },
        "job_fields": field_sizes(env.redis, keys[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--baseline-jobs", type=int, default=20_000,
                        help="jobs rq-scheduler schedules one by one (per-job bytes do not depend on the count)")
    parser.add_argument("--listpack-value", type=int, default=None,
                        help="CONFIG SET hash-max-listpack-value first (Redis 7; 6.2 calls it hash-max-ziplist-value)")
    args = parser.parse_args()
    with common.Env() as env:
        log(f"redis {env.redis.info('server')['redis_version']}")
        if args.listpack_value is not None:
            env.redis.config_set("hash-max-ziplist-value", args.listpack_value)  # an alias on Redis 7
        log(f"hash-max-ziplist-value {env.redis.config_get('hash-max-ziplist-value')}")
        chime = chime_figures(env, args.tasks)
        bare = baseline_figures(env, args.baseline_jobs)
    rows = [
        ["Chime, per task", round(chime["bytes_per_task"]), round(chime["breakdown_per_task"]["job_hash"]),
         round(chime["breakdown_per_task"]["scheduled_set"]), round(chime["breakdown_per_task"]["pending_index"])],
        ["rq-scheduler enqueue_at, per job", round(bare["bytes_per_job"]), round(bare["breakdown_per_job"]["job_hash"]),
         round(bare["breakdown_per_job"]["scheduled_set"]), "-"],
    ]
    common.print_table(["", "used_memory delta B", "job hash B", "sorted set B", "pending index B"], rows)
    log(f"ratio Chime / rq-scheduler: {chime['bytes_per_task'] / bare['bytes_per_job']:.2f}")
    log(f"Chime job hash fields (bytes): {chime['job_fields']}")
    log(f"rq-scheduler job hash fields (bytes): {bare['job_fields']}")
    common.write_results("redis_memory", {"chime": chime, "rq_scheduler": bare})


if __name__ == "__main__":
    main()
