"""The task script under data-platform latency: the same run with and without slow calls, side by side.

    python bench/task_latency.py                          # 2,000 images; read 30 ms, label 50 ms, write 100 ms
    python bench/task_latency.py --sizes 2000,5000,40000
    python bench/task_latency.py --read-ms 60 --label-ms 80 --read-concurrency 64

The task runs the way the pipeline starts it: triggered by the run's manifest (as the local runner's label-only
mode writes it: paths, sizes, sha256), its files found beside the manifest, checked, decided and labelled. The
data lake is a folder behind a context that sleeps the given time in every call (``time.sleep`` releases the GIL,
like a network wait), and keeps the labels. Each configuration runs in a fresh subprocess; the time is the task
function's own, the peak RSS is that of the process and its worker processes (sampled). It prints, per size, the
time without and with latency, their ratio, the peak RSS and whether the decisions are the same, then each target
of issue 15 met or NOT met: at most 1.3x at 40,000 images (1.5x below), peak RSS under 2 GB, same decisions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

RSS_LIMIT_MIB = 2048
MANIFEST = "dedup-manifest.json"


class LatencyContext:
    """A data lake in a folder (file key = path under ``root``), each call as slow as the platform's."""

    def __init__(self, root: Path, read_s: float, label_s: float, write_s: float, workers: int,
                 config: dict[str, str]) -> None:
        self.root, self.read_s, self.label_s, self.write_s = root, read_s, label_s, write_s
        self.workers = workers
        self.pipeline_config = config
        self.extra: dict[str, bytes] = {}
        self.labels: dict[str, dict[str, str]] = {}
        self.written: dict[str, bytes] = {}

    def read_file(self, file: dict[str, Any], form: str = "body") -> dict[str, Any]:
        time.sleep(self.read_s)  # one S3 GET
        key = file["fileKey"]
        body = self.extra[key] if key in self.extra else (self.root / key).read_bytes()
        return {"body": body, "metadata": {"ts_file_id": f"id-{key}"}, "file": dict(file)}

    def add_labels(self, file: dict[str, Any], labels: list[dict[str, str]], no_propagate: bool = False) -> dict:
        time.sleep(self.label_s)  # one POST (the pointer has its fileId: no HEAD first)
        self.labels[file["fileKey"]] = {label["name"]: label["value"] for label in labels}
        return {}

    def write_file(self, content: str | bytes, file_name: str, file_category: str, **_: Any) -> dict[str, str]:
        time.sleep(self.write_s)  # HEAD of the source, then the PUT
        self.written[file_name] = content.encode() if isinstance(content, str) else content
        return {"type": "s3file", "bucket": "lake", "fileKey": file_name}

    def raise_fatal_error(self, message: str) -> None:
        raise RuntimeError(message)


def child(args: argparse.Namespace) -> int:
    """One run of the task; prints its own seconds, the decisions and the labels applied as JSON."""
    from local_runner.label_mode import build_manifest
    from local_runner.task_host import load_task_function

    run_dir: Path = args.child
    root = run_dir.parent
    config = {k: str(v) for k in ("read_concurrency", "label_concurrency") if (v := getattr(args, k)) is not None}
    context = LatencyContext(root, args.read_ms / 1000, args.label_ms / 1000, args.write_ms / 1000, args.workers,
                             config)
    files = [(p.relative_to(run_dir).as_posix(), p.stat()) for p in run_dir.rglob("*") if p.is_file()]
    manifest = build_manifest(run_dir.name, run_dir, [(path, st.st_size, st.st_mtime_ns) for path, st in files])
    key = f"{run_dir.name}/{MANIFEST}"  # the manifest as label-only mode writes it: paths, sizes, sha256
    context.extra[key] = manifest.model_dump_json(exclude_none=True).encode()
    task = load_task_function()
    started = time.perf_counter()
    summary = task({"manifest": {"type": "s3file", "bucket": "lake", "fileKey": key}}, context)
    seconds = time.perf_counter() - started
    (written,) = context.written.values()
    result = json.loads(written)
    decisions = {o["path"]: [o["status"], o.get("duplicate_of")] for o in result["files"]}
    labels_right = all(context.labels.get(f"{run_dir.name}/{p}", {}).get("dedup-status") == d[0]
                       for p, d in decisions.items())
    print(json.dumps({"seconds": seconds, "labelled": summary["labelled"], "labels_right": labels_right,
                      "decisions": decisions}))
    return 0


def run_once(args: argparse.Namespace, run_dir: Path, latency: bool) -> dict[str, Any]:
    from bench import peak_of

    ms = (args.read_ms, args.label_ms, args.write_ms) if latency else (0, 0, 0)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(run_dir), "--workers", str(args.workers),
               "--read-ms", str(ms[0]), "--label-ms", str(ms[1]), "--write-ms", str(ms[2])]
    for name in ("read_concurrency", "label_concurrency"):
        if getattr(args, name) is not None:
            command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    _, peak, out = peak_of(command)
    return {**json.loads(out), "peak_mib": peak}


def check_targets(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for row in rows:
        n = row["images"]
        limit = 1.3 if n >= 40_000 else 1.5
        for what, ok in [(f"{n:,} images: with latency at most {limit}x the time without "
                          f"({row['ratio']:.2f}x)", row["ratio"] <= limit),
                         (f"{n:,} images: peak RSS under 2 GB ({row['peak_mib']:.0f} MiB)",
                          row["peak_mib"] < RSS_LIMIT_MIB),
                         (f"{n:,} images: the same decisions with and without latency", row["same_decisions"]),
                         (f"{n:,} images: every file labelled with its decision", row["labels_right"])]:
            lines.append(f"{'met' if ok else 'NOT met'}: {what}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2000", help="run sizes of 248x248 images, comma-separated")
    parser.add_argument("--similar-share", type=float, default=0.3)
    parser.add_argument("--read-ms", type=float, default=30)
    parser.add_argument("--label-ms", type=float, default=50)
    parser.add_argument("--write-ms", type=float, default=100)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--read-concurrency", type=int, help="the task's setting (default: its own)")
    parser.add_argument("--label-concurrency", type=int, help="the task's setting (default: its own)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    from bench import OUT, dataset

    rows = []
    for total in (int(s) for s in args.sizes.split(",")):
        root, _ = dataset(total, 248, args.similar_share)
        (run_dir,) = [p for p in root.iterdir() if p.is_dir()]
        plain, slow = run_once(args, run_dir, latency=False), run_once(args, run_dir, latency=True)
        row = {"images": total, "seconds_without": round(plain["seconds"], 2), "seconds_with": round(slow["seconds"], 2),
               "ratio": slow["seconds"] / plain["seconds"], "peak_mib": max(plain["peak_mib"], slow["peak_mib"]),
               "peak_mib_with_latency": slow["peak_mib"], "same_decisions": plain["decisions"] == slow["decisions"],
               "labels_right": plain["labels_right"] and slow["labels_right"],
               "labelled": slow["labelled"], "latency_ms": [args.read_ms, args.label_ms, args.write_ms]}
        rows.append(row)
        print(f"{total:>6,} images: {row['seconds_without']:.1f} s without latency, {row['seconds_with']:.1f} s with "
              f"read {args.read_ms:g} / label {args.label_ms:g} / write {args.write_ms:g} ms = {row['ratio']:.2f}x; "
              f"peak RSS {row['peak_mib']:.0f} MiB; same decisions: {row['same_decisions']}; "
              f"labelled {row['labelled']:,}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"task-latency-{args.sizes.replace(',', '_')}.json").write_text(json.dumps(rows, indent=2))
    print("\n".join(check_targets(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
