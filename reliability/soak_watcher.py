"""Soak: the watcher under a day's worth of file events, in bounded time; memory and threads must not grow.

    python reliability/soak_watcher.py [--seconds 300] [--files-per-run 400] [--polling]

A writer thread plays an instrument: it creates run folders, writes files into them in bursts (some written in two
steps, some temporary files created and removed), and the harness "processes" each run the watcher reports as
settled by moving its files into unique/ (excluded from watching), as the runner does. Every few seconds it samples
the process's resident memory and thread count. It prints runs and file events handled, events per second, and the
memory after warm-up versus at the end. Exit code 1 if memory grew by more than --max-growth-mb or threads leaked.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local_runner.watcher import RunWatcher  # noqa: E402


def soak(seconds: float, *, files_per_run: int = 400, polling: bool = False, settle: float = 0.3,
         workdir: Path | None = None, log=print) -> dict:
    base = Path(tempfile.mkdtemp(prefix="soak-", dir=workdir))
    root = base / "W"
    root.mkdir()
    processed: set[str] = set()
    stop = threading.Event()
    counters = {"files": 0, "events_written": 0, "runs_written": 0}

    def instrument() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            run = root / f"run-{number:06d}"
            run.mkdir()
            for i in range(files_per_run):  # a run is always written whole
                path = run / f"img_{i:05d}.bmp"
                with open(path, "wb") as handle:
                    handle.write(b"BM" + os.urandom(200))
                    if i % 10 == 0:
                        handle.flush()
                        handle.write(os.urandom(100))  # written in two steps
                counters["events_written"] += 2
                if i % 50 == 0:
                    temp = run / f"~$img_{i:05d}.tmp"
                    temp.write_bytes(b"x")
                    temp.unlink()
                    counters["events_written"] += 2
                counters["files"] += 1
            counters["runs_written"] += 1
            time.sleep(0.05)

    def needs(listing) -> bool:  # type: ignore[no-untyped-def]
        return listing.run.name not in processed

    watcher = RunWatcher(root, needs_processing=needs, exclude_dirs={"unique", "archive", ".dedup"},
                         settle_seconds=settle, polling=polling, poll_interval=0.5, rescan_seconds=5.0)
    me = psutil.Process()
    samples: list[tuple[float, float, int]] = []
    writer = threading.Thread(target=instrument, name="instrument", daemon=True)
    runs_done = 0

    def handle(listing) -> None:  # type: ignore[no-untyped-def]
        nonlocal runs_done
        target = root / "unique" / listing.run.name
        shutil.move(str(listing.run.path), str(target))  # the runner empties the run folder
        shutil.rmtree(target)  # keep the disk small: the soak is about the watcher
        processed.add(listing.run.name)
        runs_done += 1

    started = time.monotonic()
    next_sample = started
    with watcher:
        writer.start()
        while time.monotonic() - started < seconds:
            for listing in watcher.wait_settled(timeout=1.0):
                handle(listing)
            if time.monotonic() >= next_sample:
                gc.collect()
                samples.append((time.monotonic() - started, me.memory_info().rss / 2**20, threading.active_count()))
                next_sample += max(1.0, seconds / 30)
        stop.set()
        writer.join()
        drain_until = time.monotonic() + max(10.0, 20 * settle)  # every run written must still be reported
        while runs_done < counters["runs_written"] and time.monotonic() < drain_until:
            for listing in watcher.wait_settled(timeout=0.5):
                handle(listing)
        samples.append((time.monotonic() - started, me.memory_info().rss / 2**20, threading.active_count()))
    elapsed = time.monotonic() - started
    shutil.rmtree(base, ignore_errors=True)
    warm = samples[min(len(samples) - 1, max(1, len(samples) // 5))]
    summary = {
        "seconds": round(elapsed, 1), "mode": watcher.mode, "runs_written": counters["runs_written"],
        "runs_reported": runs_done, "files_written": counters["files"], "file_events": counters["events_written"],
        "events_per_second": round(counters["events_written"] / elapsed),
        "rss_after_warmup_mb": round(warm[1], 1), "rss_end_mb": round(samples[-1][1], 1),
        "rss_growth_mb": round(samples[-1][1] - warm[1], 1),
        "threads_after_warmup": warm[2], "threads_end": samples[-1][2],
    }
    log(" ".join(f"{k}={v}" for k, v in summary.items()))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--files-per-run", type=int, default=400)
    parser.add_argument("--polling", action="store_true")
    parser.add_argument("--max-growth-mb", type=float, default=20.0)
    args = parser.parse_args(argv)
    summary = soak(args.seconds, files_per_run=args.files_per_run, polling=args.polling)
    day = 40_000  # files a busy CytPix day writes (tens of runs of 1,000+ images)
    print(f"{summary['files_written']} files ({summary['files_written'] / day:.1f} busy instrument days) and "
          f"{summary['file_events']} file events in {summary['seconds']} s; {summary['runs_reported']} runs reported; "
          f"memory {summary['rss_after_warmup_mb']} MB after warm-up -> {summary['rss_end_mb']} MB at the end; "
          f"threads {summary['threads_after_warmup']} -> {summary['threads_end']}")
    ok = summary["rss_growth_mb"] <= args.max_growth_mb and summary["threads_end"] <= summary["threads_after_warmup"]
    return 0 if ok and summary["runs_reported"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
