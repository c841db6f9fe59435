"""Paired timings against the decode floor: the floor, a full run (moves) on a fresh copy and a dry run, in turn,
``--pairs`` times, and the medians of the ratios pair by pair. The machine's speed drifts by 10 % or more from one
minute to the next; a ratio taken within one triple does not.

    python bench/paired.py bench/out/data/n5000_s248/run-0001 --pairs 6

The run folder is copied once for the floor and the dry runs (a first, untimed dry run warms the page cache), and
afresh for each full run (the copies are not timed; ``sync`` before each triple).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=ROOT)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run folder (its parent is the watched folder of the dry run)")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    run = args.run.resolve()
    runner = [sys.executable, "-m", "local_runner"]
    options = ["--once", "--settle-seconds", "0", "--workers", str(args.workers), "--no-progress"]
    dry_ratios, full_ratios = [], []
    with tempfile.TemporaryDirectory(prefix="paired-") as base:
        watched = Path(base) / "dry"
        shutil.copytree(run, watched / run.name)
        subprocess.run([*runner, str(watched), *options, "--dry-run"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True, cwd=ROOT)  # warms the page cache
        for _ in range(args.pairs):
            shutil.rmtree(watched / ".dedup", ignore_errors=True)  # decided afresh each time
            full_copy = Path(base) / "full"
            shutil.rmtree(full_copy, ignore_errors=True)
            shutil.copytree(run, full_copy / run.name)
            subprocess.run(["sync"], check=False)
            floor = _timed([sys.executable, "bench/floor.py", str(watched / run.name), "--workers", str(args.workers)])
            full = _timed([*runner, str(full_copy), *options])
            dry = _timed([*runner, str(watched), *options, "--dry-run"])
            dry_ratios.append(dry / floor)
            full_ratios.append(full / floor)
            print(f"floor {floor:.2f} s, dry run {dry:.2f} s ({dry / floor:.2f}x), full run {full:.2f} s "
                  f"({full / floor:.2f}x)", flush=True)
    print(f"medians: dry run {statistics.median(dry_ratios):.2f}x, full run {statistics.median(full_ratios):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
