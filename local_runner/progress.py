"""Progress bars for long runs (tqdm), shown on a terminal and silent in a scheduled task."""

from __future__ import annotations

import sys
from typing import Callable

MIN_FILES = 200


def progress_factory(enabled: bool | None = None) -> Callable[[str, "int | None"], Callable[[int, "int | None"], None]]:
    """Returns make(run, total) -> update(done, total); a bar appears only on a terminal and for long runs."""
    show = sys.stderr.isatty() if enabled is None else enabled

    def make(run: str, total: int | None) -> Callable[[int, "int | None"], None]:
        if not show or (total is not None and total < MIN_FILES):
            return lambda done, total: None
        from tqdm import tqdm  # here: a run without a bar (a scheduled task, --no-progress) never imports it (37 ms)

        tqdm.monitor_interval = 0  # no monitor thread: our bars are updated from one place and closed explicitly
        bar = tqdm(total=total, desc=f"run {run}", unit="img", file=sys.stderr, leave=False, dynamic_ncols=True)

        def update(done: int, total_now: int | None) -> None:
            bar.update(done - bar.n)
            if total_now is not None and done >= total_now:
                bar.close()

        return update

    return make
