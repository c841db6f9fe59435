"""The TetraScience task function on the file-system context, as the local runner calls it (no moves).
Prints {path: duplicate_of} as JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from local_runner.fs_context import FileSystemContext
from local_runner.task_host import load_task_function
from dedup_engine.models import DedupResult, FolderManifest, ManifestFile


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    root = args.run_dir.parent
    context = FileSystemContext(root, workers=args.workers)
    files = sorted(p for p in args.run_dir.rglob("*") if p.is_file())
    manifest = FolderManifest(run=args.run_dir.name, files=[
        ManifestFile(path=p.relative_to(args.run_dir).as_posix(), file=context.pointer(p.relative_to(root).as_posix()))
        for p in files
    ])
    context.write_file(manifest.model_dump_json(), "manifest.json", "TMP")
    load_task_function()({"manifest": context.pointer("manifest.json")}, context)
    written = next(w for w in context.written.values() if w.file_category == "PROCESSED")
    result = DedupResult.model_validate_json(written.content)
    print(json.dumps({o.path: o.duplicate_of for o in result.files}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
