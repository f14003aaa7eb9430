"""Before/after a change: the engine benchmarks on BASE and on this tree, in one invocation, one table.

BASE is checked out as a detached `git worktree` in a temp directory (removed at the end, also on
Ctrl-C) and runs its OWN bench scripts there (cwd = that tree, the same venv python), so a base that
still imports old module paths works. The head is this work tree (uncommitted edits included), or
`--head REV` for a commit of its own in a second worktree.

Each benchmark runs on base and head back to back, alternating which goes first (base, head for the
first benchmark, head, base for the next, and so on per round), so both see the same machine. After
each run the tree's bench/results/<name>.json is copied to --raw-dir (and the head tree's own copy
is put back as it was). The rq-scheduler baselines of dispatch_lag and burst are skipped: they run no
Chime code. bare-rq stays: throughput is also compared as its ratio to bare-rq (the median of the
per-run ratios: the variants run interleaved, so run i of each saw the same moment), which cancels
machine load, as reconcile's ratio to its I/O floor does.

Verdict per figure: a figure regresses only if the head median is worse than the base median by more
than the noise allowed: the larger of 10 % and the base's own run-to-run spread ((max - min) / median
over its runs), and for lags at least 1 ms. Why 10 %: on an idle machine the final runs in
BENCHMARKS.md spread 6-11 % from run to run (throughput 97-108 /s, reconcile 6.4-6.8 s, burst
0.65-0.69 s), so a smaller difference of medians of 3 runs cannot be told from noise. A figure
measured once per side (dispatch lag, and after FLUSHALL at the default sizes) has no spread of its
own: before believing a REGRESSION there, rerun with --rounds 3.

Usage (from the repo root):
  .venv/bin/python bench/compare.py b080534            # bench/run.sh's bounded sizes, ~15 min
  .venv/bin/python bench/compare.py b080534 --quick    # small sizes, ~8 min: checks the tool works
  .venv/bin/python bench/compare.py b080534 --full     # bench/run.sh --full sizes, ~60 min
Results: the table on stdout, progress on stderr, bench/results/compare.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = os.environ.get("PYTHON") or sys.executable  # the venv python compare.py runs with
BENCHMARKS = ("dispatch_lag", "burst", "throughput", "reconcile")
CHIME_ONLY = {"dispatch_lag": ["--variants", "workers", "recorder"], "burst": ["--variants", "chime"]}
SIZES = {
    "quick": {
        "dispatch_lag": ["--tasks", "1000", "--window", "20", "--repeat", "1", "--variants", "workers"],
        "burst": ["--tasks", "2000", "--repeat", "3", *CHIME_ONLY["burst"]],
        "throughput": ["--jobs", "200", "--repeat", "3"],
        "reconcile": ["--tasks", "5000", "--repeat", "3", "--repeat-flush", "1"],
    },
    "default": {  # bench/run.sh
        "dispatch_lag": ["--tasks", "1000", "10000", "--window", "40", "--repeat", "1", *CHIME_ONLY["dispatch_lag"]],
        "burst": ["--tasks", "10000", "--repeat", "3", *CHIME_ONLY["burst"]],
        "throughput": ["--jobs", "300", "--repeat", "3"],
        "reconcile": ["--tasks", "10000", "--repeat", "3", "--repeat-flush", "1"],
    },
    "full": {  # bench/run.sh --full
        "dispatch_lag": ["--tasks", "1000", "10000", "--window", "45", "--repeat", "3", *CHIME_ONLY["dispatch_lag"]],
        "burst": ["--tasks", "10000", "--repeat", "3", *CHIME_ONLY["burst"]],
        "throughput": ["--jobs", "1000", "--repeat", "3"],
        "reconcile": ["--tasks", "100000", "--repeat", "3", "--repeat-flush", "3"],
    },
}
MIN_NOISE = 0.10  # relative; see the module docstring
MIN_NOISE_MS = 1.0  # lags of a few ms move by this much from timer jitter alone
CHILD_STOP_SECONDS = 60  # time a benchmark gets to stop its redis-server and engine processes


def log(message: str) -> None:
    print(f"[compare {datetime.now(timezone.utc):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# -- trees -------------------------------------------------------------------------------------------
def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def add_worktree(rev: str, path: Path) -> None:
    """Check out `rev` (any revision naming a commit) detached at `path`."""
    git("worktree", "add", "--detach", str(path), git("rev-parse", "--verify", f"{rev}^{{commit}}"))


def remove_worktree(path: Path) -> None:
    try:
        git("worktree", "remove", "--force", str(path))
    except subprocess.CalledProcessError as error:
        log(f"could not remove worktree {path}: {error.stderr.strip()}")
    git("worktree", "prune")


def describe_tree(tree: Path) -> dict[str, Any]:
    dirty = git("status", "--porcelain", "--untracked-files=no", cwd=tree).splitlines()
    return {"path": str(tree), "commit": git("rev-parse", "HEAD", cwd=tree), "modified_files": len(dirty)}


# -- running one benchmark on one tree -----------------------------------------------------------------
def run_child(command: list[str], cwd: Path, log_path: Path) -> int:
    """Run a bench script in its own session; on interrupt give it one SIGINT to stop what it started."""
    with open(log_path, "wb") as out:
        child = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return child.wait()
        except BaseException:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=CHILD_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
            raise


def run_benchmark(tree: Path, name: str, args: list[str], aside: Path) -> dict[str, Any]:
    """Run bench/<name>.py in `tree`, copy its result file to `aside`, leave the tree's own file as it was."""
    result = tree / "bench" / "results" / f"{name}.json"
    before = result.read_bytes() if result.exists() else None
    started = time.monotonic()
    code = run_child([PYTHON, f"bench/{name}.py", *args], tree, aside.with_suffix(".log"))
    seconds = round(time.monotonic() - started, 1)
    if code != 0:
        tail = aside.with_suffix(".log").read_text(errors="replace").strip()[-2000:]
        log(tail)
        raise RuntimeError(f"bench/{name}.py failed (exit {code}): {tail.splitlines()[-1] if tail else ''}")
    shutil.copyfile(result, aside)
    if before is None:
        result.unlink()
    else:
        result.write_bytes(before)
    return {"seconds": seconds, "data": json.loads(aside.read_text())}


def schedule(benchmarks: list[str], rounds: int) -> list[tuple[str, int, str]]:
    """(benchmark, round, side) in run order: base and head back to back, the first one alternating."""
    order, base_first = [], True
    for name in benchmarks:
        for round_number in range(1, rounds + 1):
            sides = ("base", "head") if base_first else ("head", "base")
            order += [(name, round_number, side) for side in sides]
            base_first = not base_first
    return order


# -- figures from one result file ----------------------------------------------------------------------
# Each extractor returns (label, better, per-run values); better is "lower" or "higher".
def burst_figures(data: dict[str, Any]) -> list[tuple[str, str, list[float]]]:
    runs = data["runs"]["chime"]
    return [("burst: all on queue (s)", "lower", [r["all_s"] for r in runs]),
            ("burst: first on queue (s)", "lower", [r["first_s"] for r in runs])]


def throughput_figures(data: dict[str, Any]) -> list[tuple[str, str, list[float]]]:
    """Executions/s (wall) and the ratio to bare-rq of the same round (variants run interleaved)."""
    runs = data["runs"]
    bare = [r["wall_per_second"] for r in runs["bare-rq"]]
    figures = []
    for variant in ("chime-sqlite", "chime-postgres"):
        rates = [r["wall_per_second"] for r in runs.get(variant, [])]
        if rates:
            figures.append((f"throughput {variant} (executions/s)", "higher", rates))
            figures.append((f"throughput {variant} / bare-rq", "higher", [c / b for c, b in zip(rates, bare)]))
    return figures


def reconcile_figures(data: dict[str, Any]) -> list[tuple[str, str, list[float]]]:
    figures = []
    for result in data["results"]:
        database, in_place, flushed = result["database"], result["in_place_seconds"], result["after_flushall_seconds"]
        figures += [
            (f"reconcile {database}: in place (s)", "lower", in_place),
            (f"reconcile {database}: in place / floor", "lower",
             [p / f for p, f in zip(in_place, result["floor_read_seconds"])]),
            (f"reconcile {database}: after FLUSHALL (s)", "lower", flushed),
            (f"reconcile {database}: after FLUSHALL / floor", "lower",
             [p / f for p, f in zip(flushed, result["floor_write_seconds"])]),
        ]
    return figures


def dispatch_lag_figures(data: dict[str, Any]) -> list[tuple[str, str, list[float]]]:
    """Per task count and Chime variant: enqueued lag p50/p99 (ms); the recorder's on-queue p99 too."""
    figures = []
    for run in data["runs"]:
        if not run["variant"].startswith("chime"):
            continue
        prefix = f"dispatch lag {run['tasks']} tasks, {run['variant']}"
        figures += [(f"{prefix}: enqueued p50 (ms)", "lower", [run["enqueued_lag_ms"]["p50"]]),
                    (f"{prefix}: enqueued p99 (ms)", "lower", [run["enqueued_lag_ms"]["p99"]])]
        if "dispatch_lag_ms" in run:
            figures.append((f"{prefix}: on queue p99 (ms)", "lower", [run["dispatch_lag_ms"]["p99"]]))
    return figures


EXTRACTORS = {"burst": burst_figures, "throughput": throughput_figures, "reconcile": reconcile_figures,
              "dispatch_lag": dispatch_lag_figures}


# -- verdict -------------------------------------------------------------------------------------------
def spread(values: list[float]) -> float:
    """(max - min) / median: the run-to-run noise of one side; 0 with fewer than two runs."""
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle if len(values) > 1 and middle else 0.0


def judge(label: str, better: str, base: list[float], head: list[float]) -> dict[str, Any]:
    base_median, head_median = statistics.median(base), statistics.median(head)
    ratio = head_median / base_median if base_median else float("inf")
    worse = ratio - 1 if better == "lower" else 1 - ratio  # > 0: the head is worse by this fraction
    allowed = max(MIN_NOISE, spread(base))
    if label.endswith("(ms)") and base_median:
        allowed = max(allowed, MIN_NOISE_MS / base_median)
    if worse > allowed:
        verdict = "REGRESSION"
    elif worse < -allowed:
        verdict = "no regression (better)"
    else:
        verdict = "no regression"
    return {"figure": label, "better": better, "base_runs": base, "head_runs": head,
            "base_median": base_median, "head_median": head_median, "head_over_base": round(ratio, 3),
            "allowed_worse": round(allowed, 3), "verdict": verdict}


def collect(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pool every run of every round per side, in first-seen order, and judge each figure."""
    pooled: dict[str, dict[str, Any]] = {}
    for result in (r for r in results if "data" in r):
        for label, better, values in EXTRACTORS[result["benchmark"]](result["data"]):
            entry = pooled.setdefault(label, {"better": better, "base": [], "head": []})
            entry[result["side"]] += [round(v, 4) for v in values if v is not None]
    return [judge(label, e["better"], e["base"], e["head"]) for label, e in pooled.items() if e["base"] and e["head"]]


# -- output --------------------------------------------------------------------------------------------
def number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def print_table(figures: list[dict[str, Any]], failed: list[dict[str, Any]], header: str) -> None:
    rows = [["figure", "better", "base", "head", "head/base", "allowed", "verdict"]]
    rows += [[f["figure"], f["better"], number(f["base_median"]), number(f["head_median"]),
              f"{f['head_over_base']:.3f}", f"{f['allowed_worse']:.0%}", f["verdict"]] for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"\n{header}")
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print()
    for run in failed:
        print(f"FAILED: {run['side']} {run['benchmark']} round {run['round']}: {run['error']}")
    regressions = [f["figure"] for f in figures if f["verdict"] == "REGRESSION"]
    print("verdict: " + (f"REGRESSION in {len(regressions)} figure(s): " + "; ".join(regressions)
                         if regressions else f"no regression in any of the {len(figures)} figures")
          + (f" (INCOMPLETE: {len(failed)} run(s) failed)" if failed else ""))


def write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    log(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


# -- main ----------------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="the commit before the change (any git revision)")
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", dest="sizes", action="store_const", const="quick", help="small sizes")
    sizes.add_argument("--full", dest="sizes", action="store_const", const="full", help="bench/run.sh --full sizes")
    parser.add_argument("--head", help="a revision to measure instead of this work tree (in its own worktree)")
    parser.add_argument("--rounds", type=int, default=1, help="base/head pairs per benchmark (runs pooled)")
    parser.add_argument("--benchmarks", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument("--raw-dir", type=Path, help="where each run's result file is kept (default: a new temp dir)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "compare.json")
    parser.set_defaults(sizes="default")
    return parser.parse_args()


def measure(args: argparse.Namespace, trees: dict[str, Path], raw_dir: Path) -> list[dict[str, Any]]:
    plan = schedule(args.benchmarks, args.rounds)
    results = []
    for step, (name, round_number, side) in enumerate(plan, 1):
        log(f"[{step}/{len(plan)}] {side} {name} round {round_number} (load {os.getloadavg()[0]:.1f})")
        aside = raw_dir / f"{name}-{side}-{round_number}.json"
        try:
            outcome = run_benchmark(trees[side], name, SIZES[args.sizes][name], aside)
        except RuntimeError as error:  # keep going: the other benchmarks still compare
            outcome = {"error": str(error)}
        log(f"[{step}/{len(plan)}] {side} {name} done: {outcome.get('seconds', 'FAILED')} s")
        results.append({"benchmark": name, "round": round_number, "side": side, **outcome})
    return results


def compare(args: argparse.Namespace, temp: Path, raw_dir: Path) -> dict[str, Any]:
    trees = {"base": temp / "base", "head": ROOT if args.head is None else temp / "head"}
    add_worktree(args.base, trees["base"])
    if args.head is not None:
        add_worktree(args.head, trees["head"])
    described = {side: describe_tree(tree) for side, tree in trees.items()}
    started_at, load_at_start = datetime.now(timezone.utc), os.getloadavg()
    results = measure(args, trees, raw_dir)
    return {"base": {"revision": args.base, **described["base"]},
            "head": {"revision": args.head or "work tree", **described["head"]},
            "sizes": args.sizes, "rounds": args.rounds,
            "commands": {name: f"bench/{name}.py " + " ".join(SIZES[args.sizes][name]) for name in args.benchmarks},
            "started_at": started_at.isoformat(), "finished_at": datetime.now(timezone.utc).isoformat(),
            "loadavg_at_start": load_at_start, "loadavg_at_end": os.getloadavg(), "raw_dir": str(raw_dir),
            "noise_rule": f"regression if worse than base by more than max({MIN_NOISE:.0%}, base spread"
                          f" (max-min)/median, and {MIN_NOISE_MS} ms for lags)",
            "runs": [run_record(r) for r in results],
            "figures": collect(results)}


def run_record(result: dict[str, Any]) -> dict[str, Any]:
    """One run in compare.json: what ran, how long, at which commit and load, or why it failed."""
    record = {k: result[k] for k in ("benchmark", "round", "side")}
    if "data" not in result:
        return {**record, "error": result["error"]}
    data = result["data"]
    return {**record, "seconds": result["seconds"], "code": data.get("code"),
            "loadavg_at_start": data["machine"]["loadavg_at_start"]}


def stop_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    args = parse_args()
    # Ctrl-C and SIGTERM unwind to the clean-up below, even if started with SIGINT ignored (`cmd &`);
    # the bench scripts then inherit the default SIGINT, which the forwarded one needs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    temp = Path(tempfile.mkdtemp(prefix="chime-compare-"))
    raw_dir = args.raw_dir or Path(tempfile.mkdtemp(prefix="chime-compare-raw-"))
    raw_dir.mkdir(parents=True, exist_ok=True)
    try:
        report = compare(args, temp, raw_dir)
    finally:
        for tree in (temp / "base", temp / "head"):
            if tree.exists():
                remove_worktree(tree)
        shutil.rmtree(temp, ignore_errors=True)
    write_report(args.output, report)
    head = f"{report['head']['commit'][:7]}" + (f" + {report['head']['modified_files']} modified files"
                                                 if report["head"]["modified_files"] else "")
    failed = [run for run in report["runs"] if "error" in run]
    print_table(report["figures"], failed, f"{args.sizes} sizes, base {report['base']['commit'][:7]} ({args.base}) vs head"
                                   f" {head}; medians of {args.rounds} round(s); raw results in {raw_dir}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        log("interrupted: worktrees removed, nothing written")
        sys.exit(130)
