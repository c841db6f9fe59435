"""The decode floor: open and decode every image of a folder once with Pillow, in a pool of --workers processes
(the same start method and chunking as the engine), and nothing else."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

CHUNK = 8


def decode_chunk(paths: list[str]) -> int:
    for path in paths:
        with Image.open(path) as image:
            image.load()
    return len(paths)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    files = sorted(str(p) for p in args.folder.rglob("*") if p.is_file())
    chunks = [files[i : i + CHUNK] for i in range(0, len(files), CHUNK)]
    context = multiprocessing.get_context("spawn" if sys.platform == "win32" else "forkserver")
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        done = sum(pool.map(decode_chunk, chunks))
    print(done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
