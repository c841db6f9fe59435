"""One run, end to end: fingerprint every file (in ``workers`` processes: a pool of ``workers - 1``, and this
process whenever the chunk it needs next is not ready), then decide in keep order.

Sources are pulled lazily and at most a few chunks per worker are in flight (and 64 waiting for their decisions),
so a 40,000-file run never holds all its bytes. A source is the file's bytes or a picklable zero-argument callable
that returns them (the local runner passes a path reader, so the worker process reads the file itself).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import threading
import time
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from itertools import islice
from typing import Callable, Iterable, Iterator, Sequence

from .fingerprints import Failure, Fingerprint, Source, fingerprint_many
from .grouping import Decision, Grouper, PreviewSink, keep_order, natural_key
from .models import Counts, DedupParams, DedupResult, FileOutcome
from .processes import context, default_workers, single_threaded, widen_result_pipe

Progress = Callable[[int, "int | None"], None]  # (done, total or None when unknown)
OutcomeSink = Callable[[FileOutcome], None]  # called once per input file, as soon as its outcome is final
CHUNK = 32  # images a task: each task's submit wakes the pool's manager thread and each result the deciding
# process's result thread (at 40,000 images, 2,000 submits of 16 took 0.24 s of the deciding thread; with 32, two
# alternating runs each took 0.7 s less of its CPU, 0.6-0.9 s less in all; 64 gained nothing more)
IN_FLIGHT_PER_WORKER = 4  # chunks queued for each worker: the deciding process runs unevenly (proofs), the workers
# keep working meanwhile
BUFFERED_CHUNKS = 32  # fingerprinted chunks waiting for their decisions, at most (1,024 images, about 20 MB)
INLINE_BELOW = 24  # smaller runs are fingerprinted in this process: starting workers would cost more
PACK_IN_WORKERS_ABOVE = 8_000  # in a larger run the workers also pack each proof image from PACK_FROM on: most kept
PACK_FROM = 4_096  # images are held packed there (grouping.RAW_KEPT_BYTES holds about 3,100 proof images of a 248-px
# frame as they came), and the deciding process, the run's critical path, then need not pack them (1.7 s of its
# time at 40,000 images, for 2.4 s of the workers', who wait for it)

__version__ = "0.1.0"


def dedup(
    run: str,
    sources: Iterable[tuple[str, Source]],
    params: DedupParams,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    prior: Sequence[tuple[str, Source]] = (),
    executor: Executor | None = None,
    total: int | None = None,
    previews: PreviewSink | None = None,
    on_outcome: OutcomeSink | None = None,
    ordered: bool = False,
) -> DedupResult:
    """Deduplicate one run. ``prior`` are images kept by an earlier pass over the same run: they stay kept and
    only serve as representatives; they get no outcome of their own. ``previews``, if given, receives a small JPEG
    of the images in a group (hash method: from their proof images, only for a group's images; mse method: of every
    image that could be decoded, made by the workers from the pixels they decode anyway). ``on_outcome``,
    if given, receives each file's outcome once it is final (with keep ``first`` and streaming, while the others
    are still being fingerprinted). ``ordered`` says the sources already come in natural path order, so that an
    iterator is streamed too, without being listed first."""
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    if total is None and hasattr(sources, "__len__"):
        total = len(sources)  # type: ignore[arg-type]
    stats: dict[str, float] = {}
    if params.keep == "first" and (ordered or isinstance(sources, Sequence)):
        # Streaming: with the sources in keep order, each image is decided as soon as its fingerprint arrives,
        # while the workers go on fingerprinting, and an archived image's proof image is released at once.
        in_order = sources if ordered else sorted(sources, key=lambda item: natural_key(item[0]))
        outcomes = _decide_streaming(in_order, params, workers, executor, progress, total, prior, stats, previews,
                                     on_outcome)
    else:
        results = list(_fingerprint_all(sources, params, workers, executor, progress, total, prior, previews))
        prior_paths = {path for path, _ in prior}
        prior_fps = [r for r in results if isinstance(r, Fingerprint) and r.path in prior_paths]
        fresh = [r for r in results if r.path not in prior_paths]
        decisions = decide(fresh, params, prior=prior_fps, stats=stats, previews=previews)
        outcomes = [_outcome(r, decisions.get(r.path)) for r in fresh]
        if on_outcome:
            for outcome in outcomes:
                on_outcome(outcome)
        outcomes.sort(key=lambda o: natural_key(o.path))  # (streamed outcomes come in this order already)
    t2 = time.perf_counter()
    return DedupResult(
        run=run,
        method=params.method,
        params=params,
        counts=_count(outcomes),
        files=outcomes,
        started_at=started,
        finished_at=dt.datetime.now(dt.timezone.utc),
        timings=_timings(t2 - t0, stats["search_s"], stats["proof_s"]),
        tool_version=__version__,
    )


def _timings(total_s: float, search_s: float, proof_s: float) -> dict[str, float]:
    """Parts that add up once rounded (see DedupResult.timings): total_s = decide_s + other_s and decide_s =
    candidate_search_s + proof_s; other_s is fingerprinting (waiting for the workers) and the rest."""
    total, search, proof = round(total_s, 4), round(search_s, 4), round(proof_s, 4)
    decide_s = round(search + proof, 4)
    return {"total_s": total, "decide_s": decide_s, "candidate_search_s": search, "proof_s": proof,
            "other_s": round(total - decide_s, 4)}


def decide(
    results: Sequence[Fingerprint | Failure], params: DedupParams, *, prior: Sequence[Fingerprint] = (),
    stats: dict[str, float] | None = None, previews: PreviewSink | None = None,
) -> dict[str, Decision]:
    """Decisions for every fingerprinted image (failures get none): the pure core, no processes, no I/O.
    ``stats``, if given, receives the seconds spent searching candidates and proving them, and the proofs run;
    ``previews``, thumbnails of the images that end up in a group (hash method; see Grouper)."""
    grouper = Grouper(params, previews)
    for fp in keep_order(prior, "first"):
        grouper.keep(fp)
    images = [r for r in results if isinstance(r, Fingerprint)]
    decisions = {fp.path: grouper.decide(fp) for fp in keep_order(images, params.keep)}
    if stats is not None:
        stats.update(grouper.stats())
    return decisions


def _decide_streaming(
    ordered: Iterable[tuple[str, Source]],
    params: DedupParams,
    workers: int | None,
    executor: Executor | None,
    progress: Progress | None,
    total: int | None,
    prior: Sequence[tuple[str, Source]],
    stats: dict[str, float],
    previews: PreviewSink | None,
    on_outcome: OutcomeSink | None,
) -> list[FileOutcome]:
    grouper = Grouper(params, previews)
    prior_paths = {path for path, _ in prior}
    prior_sorted = sorted(prior, key=lambda item: natural_key(item[0]))
    outcomes: list[FileOutcome] = []
    with _one_thread():  # the workers have the cores; the proofs here must not take them away
        for result in _fingerprint_all(ordered, params, workers, executor, progress, total, prior_sorted,
                                      previews):
            if result.path in prior_paths:
                if isinstance(result, Fingerprint):
                    grouper.keep(result)
                continue
            decision = grouper.decide(result) if isinstance(result, Fingerprint) else None
            outcomes.append(_outcome(result, decision))
            if on_outcome:
                on_outcome(outcomes[-1])
    stats.update(grouper.stats())
    return outcomes


def _fingerprint_all(
    items: Iterable[tuple[str, Source]],
    params: DedupParams,
    workers: int | None,
    executor: Executor | None,
    progress: Progress | None,
    total: int | None,
    prior: Sequence[tuple[str, Source]],
    previews: PreviewSink | None = None,
) -> Iterator[Fingerprint | Failure]:
    # the MSE method's workers make every image's thumbnail; the hash method's grouper makes its groups' own
    in_workers = previews is not None and params.method == "mse"
    for result in _fingerprint_each(items, params, workers, executor, progress, total, prior, in_workers):
        if previews is not None and isinstance(result, Fingerprint) and result.preview is not None:
            previews(result.path, result.preview)
            result = dataclasses.replace(result, preview=None)  # the sink has it; a kept fingerprint stays small
        yield result


def _fingerprint_each(
    items: Iterable[tuple[str, Source]],
    params: DedupParams,
    workers: int | None,
    executor: Executor | None,
    progress: Progress | None,
    total: int | None,
    prior: Sequence[tuple[str, Source]],
    preview: bool,
) -> Iterator[Fingerprint | Failure]:
    stream: Iterable[tuple[str, Source]] = [*prior, *items] if prior else items
    grand_total = None if total is None else total + len(prior)
    done = 0
    pack = params.method == "hash" and (grand_total is None or grand_total > PACK_IN_WORKERS_ABOVE)
    workers = workers or default_workers()
    if executor is None and (workers <= 1 or (grand_total is not None and grand_total < INLINE_BELOW)):
        iterator = iter(stream)
        # taken lazily: a source given as bytes is let go once its file is decoded, as one at a time did
        while batch := fingerprint_many(islice(iterator, CHUNK), params, preview=preview):
            yield from batch
            done += len(batch)
            if progress:
                progress(done, grand_total)
        return
    # The deciding process fingerprints too: with as many worker processes as cores, it would share a core with
    # them, and time-sliced processes evict each other's caches (measured: the same decisions cost half again as
    # much CPU beside two busy workers). So one core fewer is given to workers, and this process fingerprints the
    # next chunk itself whenever the one it needs next is not ready: it never waits idle, and never gets ahead of
    # the workers by more than a window.
    own = executor is None
    pool_size = max(1, workers - 1) if own else workers
    pool = executor or ProcessPoolExecutor(max_workers=pool_size, mp_context=context(), initializer=single_threaded)
    # An own pool's processes are started by a thread of ours (the first submit forks them, and waits while the
    # forkserver is still importing the engine: 0.24 s at the start of a run); until they are, this process
    # fingerprints the chunks itself.
    if own:
        widen_result_pipe(pool)
    starter = _PoolStarter(pool) if own else None
    try:
        with _one_thread():
            window: deque[Future[list[Fingerprint | Failure]] | list[Fingerprint | Failure]] = deque()
            limit = pool_size * IN_FLIGHT_PER_WORKER
            iterator = iter(stream)
            taken = 0  # images taken from the stream so far

            def take() -> tuple[int, list[tuple[str, Source]]]:
                """The next chunk, and the place in the run of its first image."""
                nonlocal taken
                chunk = list(islice(iterator, CHUNK))
                taken += len(chunk)
                return taken - len(chunk), chunk

            exhausted = False
            while True:
                ready = starter is None or starter.ready()
                while ready and not exhausted and len(window) < BUFFERED_CHUNKS and sum(
                        isinstance(entry, Future) and not entry.done() for entry in window) < limit:
                    first, chunk = take()
                    if chunk:
                        window.append(pool.submit(fingerprint_chunk, chunk, params, preview,
                                                  pack and first >= PACK_FROM))
                    else:
                        exhausted = True
                if not window and not exhausted:  # the pool is still starting
                    _, chunk = take()
                    if chunk:
                        window.append(fingerprint_chunk(chunk, params, preview))
                    else:
                        exhausted = True
                if not window:
                    break
                head = window[0]
                if isinstance(head, Future) and not head.done() and not exhausted and len(window) < BUFFERED_CHUNKS:
                    _, chunk = take()
                    if chunk:
                        window.append(fingerprint_chunk(chunk, params, preview))
                        continue
                    exhausted = True
                window.popleft()
                batch = head.result() if isinstance(head, Future) else head
                yield from batch
                done += len(batch)
                if progress:
                    progress(done, grand_total)
    finally:
        if starter is not None:
            starter.join()
        if own:
            pool.shutdown(wait=True, cancel_futures=True)


class _PoolStarter:
    """Starts a process pool's workers from a thread of its own: ``ready`` once they are (an error in starting
    them is raised there, in the caller's thread)."""

    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._start, args=(pool,), name="dedup-pool-starter", daemon=True)
        self._thread.start()

    def _start(self, pool: ProcessPoolExecutor) -> None:
        try:
            pool.submit(int)  # the first submit starts the processes (int(): a task that costs nothing)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread by ready()
            self._error = exc

    def ready(self) -> bool:
        if self._thread.is_alive():
            return False
        if self._error is not None:
            raise self._error
        return True

    def join(self) -> None:
        self._thread.join()


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """OpenCV and BLAS on one thread in this process while it decides and fingerprints: the workers have the other
    cores. (The
    host may have imported numpy before the engine could limit its BLAS threads in the environment: a task script
    on the platform does. Measured: a 5,000-image run took 13-16 s with two BLAS threads here, 6.5 s with one.)"""
    import cv2
    from threadpoolctl import threadpool_limits

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        cv2.setNumThreads(threads)


def fingerprint_chunk(
    chunk: list[tuple[str, Source]], params: DedupParams, preview: bool = False, pack: bool = False
) -> list[Fingerprint | Failure]:
    """Worker entry point (module level, so it can be pickled under spawn)."""
    return fingerprint_many(chunk, params, preview=preview, pack=pack)


def _outcome(result: Fingerprint | Failure, decision: Decision | None) -> FileOutcome:
    if isinstance(result, Failure):
        return FileOutcome(
            path=result.path,
            status=result.status,  # type: ignore[arg-type]
            sha256=result.sha256,
            size_bytes=result.size_bytes,
            error=result.message if result.status == "error" else None,
            reason=result.message if result.status == "passthrough" else None,
        )
    common = dict(
        path=result.path,
        sha256=result.sha256,
        size_bytes=result.size_bytes,
        width=result.width,
        height=result.height,
        format=result.format,
        hash=result.hash_hex,
    )
    if decision is None or decision.duplicate_of is None:
        reason = decision.reason if decision is not None and decision.reason else "kept: no earlier image is a proven copy"
        near = decision is not None and decision.nearest is not None
        return FileOutcome(status="unique", reason=reason, nearest=decision.nearest if near else None,
                           residual=decision.residual if near else None, **common)
    return FileOutcome(
        status="duplicate",
        duplicate_of=decision.duplicate_of,
        distance=decision.distance,
        proof=decision.proof,
        residual=decision.residual,
        reason=decision.reason,
        **common,
    )


def _count(outcomes: Sequence[FileOutcome]) -> Counts:
    counts = Counts(total=len(outcomes))
    for outcome in outcomes:
        setattr(counts, outcome.status, getattr(counts, outcome.status) + 1)
    return counts
