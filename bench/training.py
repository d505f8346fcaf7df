"""Training cost at growing data sizes: wall time and peak memory, as JSON and a markdown table.

    python -m bench.training [--rows 10000 100000 1000000]

Each size runs `python -m training train` in its own process on seeded synthetic data with
a local bundle directory and MLflow store, so the numbers are what a user's Job would see.
Peak memory is the child's max RSS from getrusage, not an estimate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def run_once(rows: int, workdir: Path) -> dict[str, float]:
    data = workdir / f"customers-{rows}.csv"
    subprocess.run(
        [sys.executable, "-m", "training", "-q", "generate", "--rows", str(rows),
         "--seed", "7", "--output", str(data)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "training", "-q", "train", "--data", str(data),
         "--output", str(workdir / f"bundles-{rows}")],
        stdout=subprocess.PIPE, env={**os.environ, "MLFLOW_TRACKING_URI": ""},
    )  # fmt: skip
    assert process.stdout is not None
    stdout = process.stdout.read()
    # wait4 gives this child's own rusage: its CPU time and peak RSS, read from the kernel.
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(
            f"training on {rows} rows failed: exit {os.waitstatus_to_exitcode(status)}"
        )
    summary = json.loads(stdout)
    return {
        "rows": rows,
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "test_roc_auc": round(summary["test_roc_auc"], 4),
        "seconds_per_100k_rows": round(wall / rows * 100_000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    results = []
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        for rows in sorted(args.rows):
            print(f"training on {rows} rows ...", file=sys.stderr, flush=True)
            results.append(run_once(rows, Path(tmp)))
            print(f"  {results[-1]}", file=sys.stderr, flush=True)
    # The run shares the machine with whatever else runs: the load average puts numbers in context.
    load_average = round(os.getloadavg()[1], 2)
    report = {
        "started": started,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "load_average_5min_at_end": load_average,
        "note": "5-fold CV over 4 values of C, out-of-fold threshold, one refit per step",
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "training.json").write_text(json.dumps(report, indent=2) + "\n")
    header = (
        "| rows | wall s | CPU s | peak RSS MiB | s / 100k rows | test ROC AUC |\n"
        "|---:|---:|---:|---:|---:|---:|\n"
    )
    table = header + "".join(
        f"| {r['rows']:,} | {r['wall_seconds']} | {r['cpu_seconds']} | {r['peak_rss_mib']} "
        f"| {r['seconds_per_100k_rows']} | {r['test_roc_auc']} |\n"
        for r in results
    )
    context = (
        f"Run of {started} on {os.cpu_count()} cores (5-minute load average at the end: "
        f"{load_average}); `python -m training train` per size, data generation excluded. "
        f"{report['note']}.\n\n"
    )
    (RESULTS / "training.md").write_text(context + table)
    print(table)


if __name__ == "__main__":
    main()
