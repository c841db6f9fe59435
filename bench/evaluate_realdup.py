"""Accuracy on a labelled set (realdup-dev layout: images/..., truth.json): false merges, lost images, recall.

    python bench/evaluate_realdup.py [ROOT] [--max-distance 10] [--max-residual 0.75] ...

ROOT defaults to the set shipped with the repository, bench/data/realdup-dev (its SOURCES.md gives the provenance
and licence of every source image).

The whole set is one dedup scope. A *false merge* is a file archived as a copy of a file of another group; a
*lost* image is a group (a distinct real image) with no kept file at all. Recall counts each labelled copy whose
file ends up with the same kept representative as the file it was made from.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

from dedup_engine import DedupParams, DedupResult, dedup

DEFAULT_SET = Path(__file__).resolve().parent / "data" / "realdup-dev"


def load(root: Path) -> tuple[dict, list[tuple[str, bytes]]]:
    truth = json.loads((root / "truth.json").read_text())
    sources = [(path, (root / path).read_bytes()) for path in truth["files"]]
    return truth, sources


def score(truth: dict, result: DedupResult) -> dict:
    files = truth["files"]
    outcomes = result.by_path()
    rep = {}
    for path, outcome in outcomes.items():
        target = path
        while outcomes[target].duplicate_of is not None:
            target = outcomes[target].duplicate_of
        rep[path] = target
    false_merges = [
        (path, o.duplicate_of)
        for path, o in outcomes.items()
        if o.status == "duplicate" and files[path]["group"] != files[o.duplicate_of]["group"]
    ]
    kept_groups = {files[p]["group"] for p, o in outcomes.items() if o.status != "duplicate"}
    all_groups = {f["group"] for f in files.values()}
    per = collections.defaultdict(lambda: [0, 0])
    for path, info in files.items():
        if info["role"] == "duplicate":
            per[info["transform"]][1] += 1
            if rep[path] == rep[info["derived_from"]]:
                per[info["transform"]][0] += 1
    found = sum(v[0] for v in per.values())
    total = sum(v[1] for v in per.values())
    return {
        "files": len(files),
        "false_merges": len(false_merges),
        "false_merge_examples": false_merges[:10],
        "lost_images": len(all_groups - kept_groups),
        "duplicates_found": found,
        "duplicates_total": total,
        "recall": round(found / total, 4) if total else 1.0,
        "per_transform": {k: {"found": v[0], "total": v[1]} for k, v in sorted(per.items())},
        "counts": result.counts.model_dump(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, nargs="?", default=DEFAULT_SET,
                        help="a labelled set (images/..., truth.json); default: the shipped bench/data/realdup-dev")
    parser.add_argument("--method", default="hash")
    parser.add_argument("--hash-algorithm", default="phash")
    parser.add_argument("--hash-size", type=int, default=8)
    parser.add_argument("--max-distance", type=int, default=None)
    parser.add_argument("--max-residual", type=float, default=None)
    parser.add_argument("--max-mse", type=float, default=None)
    parser.add_argument("--keep", default="first")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print the score as JSON")
    args = parser.parse_args(argv)
    overrides = {
        k: v
        for k, v in {
            "method": args.method,
            "hash_algorithm": args.hash_algorithm,
            "hash_size": args.hash_size,
            "max_distance": args.max_distance,
            "max_residual": args.max_residual,
            "max_mse": args.max_mse,
            "keep": args.keep,
        }.items()
        if v is not None
    }
    params = DedupParams(**overrides)
    truth, sources = load(args.root)
    started = time.perf_counter()
    result = dedup(truth.get("set", "eval"), sources, params, workers=args.workers)
    seconds = time.perf_counter() - started
    report = score(truth, result) | {"seconds": round(seconds, 2), "params": params.model_dump()}
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"{args.root}: {report['files']} files, {seconds:.1f} s, params {overrides}")
    print(
        f"false merges {report['false_merges']}, lost images {report['lost_images']}, "
        f"duplicates found {report['duplicates_found']}/{report['duplicates_total']} ({report['recall']:.1%})"
    )
    for name, v in report["per_transform"].items():
        print(f"  {name:40s} {v['found']:4d}/{v['total']:<4d} {v['found'] / v['total']:.0%}")
    for a, b in report["false_merge_examples"]:
        print(f"  FALSE MERGE {a} -> {b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
