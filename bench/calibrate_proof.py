"""The pixel proof's calibration on a labelled real set: how close true copies and distinct look-alikes come.

    python bench/calibrate_proof.py [bench/data/realdup-dev] [--max-residual 0.75] [--max-shift-px 4] [--worst 5]

Every labelled copy is proven against the file it was made from, and every pair of files from two groups of a
hard-negative set (distinct look-alikes: cells of one montage, adjacent z-slices, overlapping fields) against each
other. It prints, per transform, how many copies pass and their highest residual; per hard-negative kind, the lowest
residual; and the margin: the highest residual of a true pair, the lowest of a distinct pair (near-empty "ambiguous"
tiles aside: they are never near-duplicates of anything, only identical pixels count), and the threshold between.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import math
import sys
from pathlib import Path

from dedup_engine import DedupParams
from dedup_engine.fingerprints import Fingerprint, fingerprint
from dedup_engine.proof import prove

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_realdup import DEFAULT_SET, load  # noqa: E402 - the labelled set and its reading are the evaluation's


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, nargs="?", default=DEFAULT_SET)
    parser.add_argument("--max-residual", type=float, default=DedupParams().max_residual)
    parser.add_argument("--max-shift-px", type=int, default=DedupParams().max_shift_px)
    parser.add_argument("--worst", type=int, default=5, help="list this many of the closest calls of each side")
    args = parser.parse_args(argv)
    truth, sources = load(args.root)
    files = truth["files"]
    params = DedupParams(max_residual=args.max_residual, max_shift_px=args.max_shift_px)
    prints = {path: fingerprint(path, data, params) for path, data in sources}
    proofs = {path: fp.proof.prepared() for path, fp in prints.items() if isinstance(fp, Fingerprint) and fp.proof}

    def residual(a: str, b: str) -> tuple[float, str]:
        # as the grouper proves: with both foreground centroids when both images have one
        centroids = (prints[a].centroid, prints[b].centroid)  # type: ignore[union-attr]
        found = prove(proofs[a], proofs[b], max_residual=params.max_residual, max_shift_px=params.max_shift_px,
                      centroids=None if None in centroids else centroids)
        return found.residual, found.reason

    copies: dict[str, list[tuple[float, str, str]]] = collections.defaultdict(list)
    for path, info in files.items():
        if info["role"] == "duplicate" and path in proofs and info["derived_from"] in proofs:
            value, reason = residual(info["derived_from"], path)
            copies[info["transform"]].append((value, path, reason))
    members = collections.defaultdict(list)
    for path, info in files.items():
        members[info["group"]].append(path)
    ambiguous = {info["group"] for info in files.values() if info.get("ambiguous")}
    distinct: dict[str, list[tuple[float, str, str]]] = collections.defaultdict(list)
    for negative in truth["hard_negative_sets"].values():
        for first, second in itertools.combinations(negative["groups"], 2):
            if first in ambiguous or second in ambiguous:
                continue
            for a in members[first]:
                for b in members[second]:
                    if a in proofs and b in proofs:
                        value, reason = residual(a, b)
                        distinct[negative["kind"]].append((value, f"{a} ~ {b}", reason))
    threshold = params.max_residual
    print(f"{args.root}: max_residual {threshold:g}, max_shift_px {params.max_shift_px}")
    print(f"{'copies by transform':44s} {'passed':>9s} {'highest residual':>17s}")
    for transform, rows in sorted(copies.items()):
        finite = [v for v, _, _ in rows if math.isfinite(v)]
        passed = sum(v <= threshold for v, _, _ in rows)
        print(f"  {transform:42s} {passed:4d}/{len(rows):<4d} {max(finite, default=float('nan')):17.2f}")
    print(f"{'distinct look-alikes by kind':44s} {'pairs':>9s} {'lowest residual':>17s}")
    for kind, rows in sorted(distinct.items()):
        print(f"  {kind:42s} {len(rows):9d} {min(v for v, _, _ in rows):17.2f}")
    true_rows = sorted((row for rows in copies.values() for row in rows if math.isfinite(row[0])), reverse=True)
    never = sum(1 for rows in copies.values() for v, _, _ in rows if not math.isfinite(v))
    false_rows = sorted(row for rows in distinct.values() for row in rows)
    highest, lowest = true_rows[0][0], false_rows[0][0]
    print(f"highest residual of a true pair: {highest:.2f} ({never} copies cannot be proven at all: near-empty frames)")
    print(f"lowest residual of a distinct pair: {lowest:.2f}")
    print(f"margin: threshold {threshold:g} is {threshold - highest:+.2f} above the highest true pair and "
          f"{lowest - threshold:+.2f} below the lowest distinct pair")
    for title, rows in (("closest calls among true pairs", true_rows), ("closest distinct pairs", false_rows)):
        print(title + ":")
        for value, name, reason in rows[: args.worst]:
            print(f"  {value:6.2f}  {name}  ({reason})")
    return 0 if highest <= threshold < lowest else 1


if __name__ == "__main__":
    sys.exit(main())
