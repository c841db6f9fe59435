"""Check that the pruned MSE search gives exactly the brute-force answer on a real run folder.

    python bench/mse_bruteforce.py RUN_DIR RESULT_JSON

Fingerprints RUN_DIR with the engine, decides twice (with the pruned index, and with an index that compares every
kept image of the same shape in full, no bound), and compares both with the ``duplicate_of`` of RESULT_JSON (the
runner's mse result). Prints JSON: images, full comparisons of each, and how many decisions differ (must be 0).
Quadratic on purpose: meant for the 1,000-image run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dedup_engine import mse as mse_module
from dedup_engine.engine import _fingerprint_all, decide
from dedup_engine.fingerprints import Fingerprint
from dedup_engine.models import DedupParams
from local_runner.fs_context import FileReader


class BruteForceIndex(mse_module.MseIndex):
    def nearest(self, pixels, max_mse, count):  # type: ignore[no-untyped-def]
        group = self._groups.get(pixels.shape)
        if group is None:
            return []
        hits = []
        for item in group.members:
            self.full_comparisons += 1
            value = mse_module.mse(group.pixels[item], pixels)
            if value <= max_mse:
                hits.append((item, value))
        hits.sort(key=lambda pair: (pair[1], self._order[pair[0]]))
        return hits[:count]


def main() -> int:
    run_dir, result_path = Path(sys.argv[1]), Path(sys.argv[2])
    result = json.loads(result_path.read_text())
    params = DedupParams.model_validate(result["params"])
    files = sorted(p for p in run_dir.rglob("*") if p.is_file())
    sources = [(p.relative_to(run_dir).as_posix(), FileReader(str(p))) for p in files]
    fps = [r for r in _fingerprint_all(sources, params, None, None, None, len(sources), ()) if isinstance(r, Fingerprint)]
    pruned_stats: dict[str, float] = {}
    pruned = decide(fps, params, stats=pruned_stats)
    from dedup_engine import grouping

    original = grouping.MseIndex
    grouping.MseIndex = BruteForceIndex  # type: ignore[misc]
    try:
        brute = decide(fps, params)
    finally:
        grouping.MseIndex = original  # type: ignore[misc]
    runner = {o["path"]: o.get("duplicate_of") for o in result["files"] if o["status"] != "error"}
    differ_brute = sum(1 for path, d in pruned.items() if d.duplicate_of != brute[path].duplicate_of)
    differ_runner = sum(1 for path, d in brute.items() if d.duplicate_of != runner.get(path))
    print(json.dumps({"images": len(fps), "differ_pruned_vs_brute": differ_brute,
                      "differ_runner_vs_brute": differ_runner}))
    return 0 if differ_brute == differ_runner == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
