from __future__ import annotations

import functools
import io
import random
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFilter

from dedup_engine import DedupParams, DedupResult, dedup, engine
from dedup_engine.grouping import natural_key


def _png(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt)
    return buffer.getvalue()


def _cells(seed: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:48, :48]
    images = []
    for _ in range(n):
        cy, cx, r = rng.uniform(18, 30), rng.uniform(18, 30), rng.uniform(6, 14)
        blob = 120 + 80 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        images.append(np.clip(blob + rng.normal(0, 6, blob.shape), 0, 255).astype(np.uint8))
    return images


def check_invariants(result: DedupResult, paths: list[str], params: DedupParams) -> None:
    assert sorted(o.path for o in result.files) == sorted(paths)  # exactly one outcome per input
    by_path = result.by_path()
    for outcome in result.files:
        if outcome.status != "duplicate":
            assert outcome.duplicate_of is None
            continue
        kept = by_path[outcome.duplicate_of]
        assert kept.status == "unique", "a duplicate must point to a kept file"
        assert outcome.proof in ("identical_bytes", "identical_pixels", "near_duplicate")
        if outcome.proof == "identical_bytes":
            assert outcome.sha256 == kept.sha256
        elif outcome.proof == "near_duplicate":
            assert outcome.distance is not None and outcome.residual is not None
            assert outcome.residual <= params.max_residual
            if params.method == "hash":  # the two perceptual hashes' distance, whatever found the candidate
                assert outcome.distance == (int(outcome.hash, 16) ^ int(kept.hash, 16)).bit_count()
            else:
                assert outcome.distance <= params.max_mse
    counts = result.counts
    assert counts.total == len(paths) == counts.unique + counts.duplicate + counts.error + counts.passthrough


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 12), copies=st.integers(0, 8), method=st.sampled_from(["hash", "mse"]))
def test_invariants_and_exact_copies_whatever_the_order(seed: int, n: int, copies: int, method: str) -> None:
    rng = random.Random(seed)
    originals = _cells(seed, n)
    files: dict[str, bytes] = {f"orig_{i:03d}.png": _png(a) for i, a in enumerate(originals)}
    exact: dict[str, str] = {}
    for j in range(copies):
        i = rng.randrange(n)
        name = f"copy_{j:03d}.{'bmp' if j % 2 else 'png'}"
        files[name] = _png(originals[i], "BMP" if j % 2 else "PNG")
        exact[name] = f"orig_{i:03d}.png"
    names = list(files)
    rng.shuffle(names)
    params = DedupParams(method=method)
    result = dedup("r", [(name, files[name]) for name in names], params, workers=1)
    check_invariants(result, names, params)
    by_path = result.by_path()
    groups: dict[str, set[str]] = {}
    for copy, original in exact.items():
        groups.setdefault(original, {original}).add(copy)
    for members in groups.values():  # exactly one member of each exact group is kept, the first in path order
        kept = [m for m in members if by_path[m].status == "unique"]
        assert kept == [min(members, key=natural_key)]


def test_realdup_subset_no_false_merges(engine_data: Path, engine_truth: dict) -> None:
    files = engine_truth["files"]
    sources = [(name, (engine_data / name).read_bytes()) for name in sorted(files)]
    params = DedupParams()
    result = dedup("engine", sources, params, workers=2)
    check_invariants(result, [n for n, _ in sources], params)
    for outcome in result.files:
        if outcome.status == "duplicate":
            assert files[outcome.path]["group"] == files[outcome.duplicate_of]["group"], outcome
    for pair in engine_truth["duplicate_pairs"]:
        a, b = result.by_path()[pair["original"]], result.by_path()[pair["copy"]]
        assert {a.status, b.status} == {"unique", "duplicate"}, pair
    assert {o.status for o in result.files} <= {"unique", "duplicate"}


def test_pool_and_inline_decide_the_same(engine_data: Path, engine_truth: dict) -> None:
    sources = [(name, (engine_data / name).read_bytes()) for name in sorted(engine_truth["files"])][:60]
    inline = dedup("r", sources, DedupParams(), workers=1)
    pooled = dedup("r", iter(sources), DedupParams(), workers=2, total=len(sources))
    strip = lambda r: [o.model_dump() for o in r.files]  # noqa: E731
    assert strip(inline) == strip(pooled)


class _SlowExecutor(Executor):
    """Runs each chunk in a thread after a delay, like a worker slower than the deciding process: the deciding
    process then fingerprints chunks itself. Counts the chunks it was given."""

    def __init__(self, delay: float) -> None:
        self._threads = ThreadPoolExecutor(max_workers=1)
        self.delay = delay
        self.chunks = 0

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        self.chunks += 1

        def slow():  # type: ignore[no-untyped-def]
            time.sleep(self.delay)
            return fn(*args, **kwargs)

        return self._threads.submit(slow)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._threads.shutdown(wait=wait, cancel_futures=cancel_futures)


@pytest.mark.parametrize("ordered", [True, False])
def test_the_deciding_process_fingerprints_while_it_waits_and_decides_the_same(
        engine_data: Path, engine_truth: dict, ordered: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the chunk it needs next is not ready, the deciding process fingerprints the next one itself instead of
    waiting: the outcomes are the same, in the same order, and every file has exactly one."""
    monkeypatch.setattr(engine, "CHUNK", 2)  # more chunks than the window holds
    names = sorted(engine_truth["files"], key=natural_key)[:64]
    sources = [(name, (engine_data / name).read_bytes()) for name in names]
    inline = dedup("r", sources, DedupParams(), workers=1)
    slow = _SlowExecutor(delay=0.05)
    seen: list[str] = []
    try:
        helped = dedup("r", iter(sources) if not ordered else sources, DedupParams(), executor=slow, workers=2,
                       total=len(sources), ordered=ordered, on_outcome=lambda o: seen.append(o.path))
    finally:
        slow.shutdown()
    assert [o.model_dump() for o in helped.files] == [o.model_dump() for o in inline.files]
    chunks = -(-len(sources) // engine.CHUNK)
    assert 0 < slow.chunks < chunks  # the executor got some chunks, this process fingerprinted the others
    assert sorted(seen) == sorted(names) and len(seen) == len(names)
    if ordered:
        assert seen == names  # streamed in keep order, whoever fingerprinted


def test_this_process_fingerprints_until_its_pool_has_started_and_decides_the_same(
        engine_data: Path, engine_truth: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """An own pool's worker processes start in a thread (the forkserver may still be importing the engine); this
    process fingerprints the first chunks meanwhile, then the pool takes over, and the outcomes are the same."""
    monkeypatch.setattr(engine, "CHUNK", 2)
    names = sorted(engine_truth["files"], key=natural_key)[:60]
    sources = [(name, (engine_data / name).read_bytes()) for name in names]
    inline = dedup("r", sources, DedupParams(), workers=1)
    started = engine._PoolStarter._start
    here: list[str] = []
    real = engine.fingerprint_many

    def slow_start(self: engine._PoolStarter, pool: object) -> None:
        time.sleep(0.4)  # a forkserver still importing
        started(self, pool)

    def counted(chunk: list[tuple[str, object]], *args: object, **kwargs: object) -> object:
        here.extend(path for path, _ in chunk)  # only this process's calls: a worker runs its own module's function
        time.sleep(0.02 * len(chunk))
        return real(chunk, *args, **kwargs)

    monkeypatch.setattr(engine._PoolStarter, "_start", slow_start)
    monkeypatch.setattr(engine, "fingerprint_many", counted)
    pooled = dedup("r", sources, DedupParams(), workers=2)
    assert [o.model_dump() for o in pooled.files] == [o.model_dump() for o in inline.files]
    assert 4 <= len(here) < len(names)  # the first chunks here while the pool started, the pool's share after
    assert len(set(here)) == len(here)  # none fingerprinted twice


def test_proof_images_packed_by_the_workers_decide_as_those_packed_here(engine_data: Path, engine_truth: dict,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """In a large run the workers pack each proof image (PACK_IN_WORKERS_ABOVE, PACK_FROM); a kept image then
    holds the worker's packed bytes, and every decision is the one made when the deciding process packs."""
    from dedup_engine import engine, grouping

    sources = [(name, (engine_data / name).read_bytes()) for name in sorted(engine_truth["files"])]
    monkeypatch.setattr(grouping, "RAW_KEPT_BYTES", 0)  # every kept image packed
    here = dedup("r", sources, DedupParams(), workers=1)
    monkeypatch.setattr(engine, "PACK_IN_WORKERS_ABOVE", 0)
    monkeypatch.setattr(engine, "PACK_FROM", 0)
    arrived: list[bool] = []
    real_keep = grouping.Grouper.keep

    def keep(self: grouping.Grouper, fp: object) -> None:
        arrived.append(fp.proof is not None and fp.proof.packed is not None)  # type: ignore[attr-defined]
        real_keep(self, fp)  # type: ignore[arg-type]
        assert self.kept[-1].proof is None or self.kept[-1].proof.packed is None  # held once, as its data

    monkeypatch.setattr(grouping.Grouper, "keep", keep)
    pooled = dedup("r", sources, DedupParams(), workers=2)
    assert [o.model_dump(exclude={"started_at"}) for o in pooled.files] == \
        [o.model_dump(exclude={"started_at"}) for o in here.files]
    assert any(arrived)  # the pool's chunks came packed (the ones made here while it started did not)


def test_a_pool_that_cannot_start_says_so_in_the_callers_thread() -> None:
    class Broken:
        def submit(self, *args: object) -> None:
            raise OSError("no processes here")

    starter = engine._PoolStarter(Broken())  # type: ignore[arg-type]
    starter.join()
    with pytest.raises(OSError, match="no processes here"):
        starter.ready()


def test_streaming_decisions_equal_decisions_after_fingerprinting(engine_data: Path, engine_truth: dict) -> None:
    """A list of sources is decided while it is fingerprinted (in keep order, whatever order the list has);
    an iterator is fingerprinted first and decided after. Same answer, prior images included."""
    names = sorted(engine_truth["files"])
    sources = [(name, (engine_data / name).read_bytes()) for name in names][:80]
    prior = sources[:5]
    fresh = list(reversed(sources[5:]))
    for workers in (1, 2):
        streamed = dedup("r", fresh, DedupParams(), workers=workers, prior=prior)
        batched = dedup("r", iter(fresh), DedupParams(), workers=workers, prior=prior, total=len(fresh))
        assert [o.model_dump() for o in streamed.files] == [o.model_dump() for o in batched.files]
        assert {o.path for o in streamed.files} == {name for name, _ in fresh}
        assert streamed.counts.duplicate > 0


@pytest.mark.parametrize(("workers", "keep"), [(1, "first"), (2, "first"), (2, "largest")])
def test_previews_are_small_jpegs_of_the_images_in_groups_and_change_nothing(
    engine_data: Path, workers: int, keep: str
) -> None:
    paths = sorted(engine_data.glob("*.png"))[:30] + sorted(engine_data.glob("*.bmp"))[:10]
    sources = [(p.name, p.read_bytes()) for p in paths] + [("broken.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 20)]
    sources.append(("copy-of-" + paths[0].name, paths[0].read_bytes()))
    previews: dict[str, bytes] = {}
    params = DedupParams(keep=keep)
    with_previews = dedup("r", sources, params, workers=workers, previews=previews.__setitem__)
    without = dedup("r", sources, params, workers=workers)
    assert [o.model_dump() for o in with_previews.files] == [o.model_dump() for o in without.files]
    in_groups = {o.path for o in with_previews.files if o.status == "duplicate"}
    in_groups |= {o.duplicate_of for o in with_previews.files if o.duplicate_of}
    assert len(in_groups) >= 4 and set(previews) == in_groups  # only what the report shows; none for the broken file
    for name in in_groups:
        thumb = Image.open(io.BytesIO(previews[name]))
        original = Image.open(engine_data / name.removeprefix("copy-of-"))
        assert thumb.format == "JPEG" and thumb.mode == "L"
        factor = max(1, min(-(-max(original.size) // 128), min(original.size)))  # the proof image's, as it is
        assert thumb.size == (original.width // factor, original.height // factor) and max(thumb.size) <= 128
        reduced = np.asarray(original.convert("L").resize(thumb.size, Image.Resampling.BOX), np.float32)
        shown = np.asarray(thumb, np.float32)
        assert np.abs(shown - reduced).mean() < 8  # the same picture, give or take JPEG and resampling


def test_sources_may_be_readers_run_in_the_worker(engine_data: Path) -> None:
    paths = sorted(engine_data.glob("*.png"))[:40]
    readers = [(p.name, functools.partial(Path.read_bytes, p)) for p in paths]
    from_readers = dedup("r", readers, DedupParams(), workers=2)
    from_bytes = dedup("r", [(p.name, p.read_bytes()) for p in paths], DedupParams(), workers=1)
    assert [o.model_dump() for o in from_readers.files] == [o.model_dump() for o in from_bytes.files]


def test_unreadable_source_is_a_per_file_error(tmp_path: Path) -> None:
    good = _png(_cells(1, 1)[0])
    missing = functools.partial(Path.read_bytes, tmp_path / "gone.png")
    result = dedup("r", [("gone.png", missing), ("ok.png", good)], DedupParams(), workers=1)
    assert result.by_path()["gone.png"].status == "error" and "cannot read" in result.by_path()["gone.png"].error
    assert result.by_path()["ok.png"].status == "unique"


@pytest.mark.parametrize("keep", ["first", "largest", "sharpest"])
def test_keep_rules_choose_the_representative(keep: str) -> None:
    base = _cells(3, 1)[0]
    softer = np.asarray(Image.fromarray(base).filter(ImageFilter.GaussianBlur(0.6)))
    bigger = np.asarray(Image.fromarray(base).resize((52, 52), Image.Resampling.LANCZOS))
    files = {"a_soft.png": _png(softer), "b_sharp.png": _png(base), "c_big.png": _png(bigger)}
    result = dedup("r", list(files.items()), DedupParams(keep=keep), workers=1)
    kept = [o.path for o in result.files if o.status == "unique"]
    assert kept == {"first": ["a_soft.png"], "largest": ["c_big.png"], "sharpest": ["b_sharp.png"]}[keep], result.files


def test_later_arrivals_are_checked_against_prior_kept_images() -> None:
    a, b = _cells(5, 2)
    result = dedup("r", [("late_copy.bmp", _png(a, "BMP")), ("late_new.png", _png(b))], DedupParams(),
                   prior=[("early.png", _png(a))], workers=1)
    by_path = result.by_path()
    assert set(by_path) == {"late_copy.bmp", "late_new.png"}
    assert by_path["late_copy.bmp"].duplicate_of == "early.png"
    assert by_path["late_new.png"].status == "unique"


@pytest.mark.parametrize("blank_at", [63, 64, 65, 128])
def test_a_blank_frame_kept_anywhere_is_a_candidate_like_any_other(blank_at: int) -> None:
    """A blank frame has no foreground, so no centred signature; its layout signature is zeros, nearer to every
    other signature than most of them are to each other, so it is among every later image's candidates. Kept as
    item 64 (the size its table had then), it once made the next image's ranking fail and the run with it."""
    from local_runner.generator import draw_frame

    frames = [_png(draw_frame(np.random.default_rng(seed), (248, 248), 2)) for seed in range(130)]
    blank = _png(np.full((248, 248), 128, np.uint8))
    files = [(f"img{i:03d}.png", data) for i, data in enumerate(frames)]
    files.insert(blank_at, (f"img{blank_at - 1:03d}_blank.png", blank))  # kept as item blank_at: after
    # img{blank_at - 1}, before img{blank_at}
    files.append(("zz_copy.png", frames[blank_at]))  # a copy of the frame right after the blank one
    params = DedupParams()
    result = dedup("r", files, params, workers=1)
    check_invariants(result, [name for name, _ in files], params)
    by_path = result.by_path()
    assert [o.path for o in result.files if o.status == "duplicate"] == ["zz_copy.png"]  # the others all kept
    assert by_path["zz_copy.png"].duplicate_of == f"img{blank_at:03d}.png"


@pytest.mark.parametrize("method", ["hash", "mse"])
def test_strips_and_tiny_images_are_decided_not_crashed(method: str) -> None:
    """Thin strips and one-pixel images (a cropped export, a line-scan) are images like any other: each gets a
    decision, exact copies are found, and nothing raises (a 2x2000 strip once broke the proof's reduction)."""
    rng = np.random.default_rng(3)
    files: dict[str, bytes] = {}
    for shape in [(1, 1), (1, 300), (300, 1), (2, 2000), (3, 129), (129, 3), (5000, 1)]:
        name = f"{shape[0]}x{shape[1]}"
        array = rng.integers(0, 256, shape, dtype=np.uint8)
        files[f"{name}.png"] = _png(array)
        files[f"{name}_copy.bmp"] = _png(array, "BMP")
        files[f"{name}_brighter.png"] = _png(np.clip(array.astype(int) + 3, 0, 255).astype(np.uint8))
    params = DedupParams(method=method)
    result = dedup("r", list(files.items()), params, workers=1)
    check_invariants(result, list(files), params)
    by_path = result.by_path()
    assert {o.status for o in result.files} <= {"unique", "duplicate"}
    for name in files:
        if name.endswith("_copy.bmp"):
            assert by_path[name].status == "duplicate" and by_path[name].proof == "identical_pixels", by_path[name]
            assert by_path[name].duplicate_of == name.replace("_copy.bmp", ".png")


def test_an_unexpected_failure_after_decoding_is_that_files_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever goes wrong while fingerprinting one decoded image, that file gets an error naming it and stays
    where it is; the other files are decided as usual."""
    from dedup_engine import fingerprints

    real = fingerprints.perceptual_hash

    def fussy(grey: np.ndarray, *args: object) -> object:
        if grey.shape == (48, 47):
            raise ValueError("a surprise")
        return real(grey, *args)

    monkeypatch.setattr(fingerprints, "perceptual_hash", fussy)
    a, b = _cells(1, 2)
    files = {"a.png": _png(a), "a_copy.png": _png(a), "odd.png": _png(b[:, :47])}
    result = dedup("r", list(files.items()), DedupParams(), workers=1)
    by_path = result.by_path()
    assert by_path["odd.png"].status == "error"
    assert "a surprise" in by_path["odd.png"].error and "left where it is" in by_path["odd.png"].error
    assert by_path["a_copy.png"].status == "duplicate" and by_path["a.png"].status == "unique"


def test_a_kept_image_names_its_nearest_candidate_and_residual() -> None:
    """A noisier copy than the proof accepts is kept, and says which kept image came nearest, at what residual: the
    near misses a person tuning max_residual looks at (the report lists them)."""
    from local_runner.generator import draw_frame

    frame = draw_frame(np.random.default_rng(3), (248, 248))
    noisy = np.clip(np.rint(frame + np.random.default_rng(4).normal(0, 10, frame.shape)), 0, 255).astype(np.uint8)
    result = dedup("r", [("a.png", _png(frame)), ("b.png", _png(noisy))], DedupParams())
    a, b = result.by_path()["a.png"], result.by_path()["b.png"]
    assert a.status == "unique" and a.nearest is None and a.reason == "kept: the first image of its kind"
    assert b.status == "unique" and b.nearest == "a.png"
    assert b.residual is not None and DedupParams().max_residual < b.residual < 2 * DedupParams().max_residual
    assert f"nearest kept a.png: residual {b.residual:.2f} > 0.75" in b.reason
    loose = dedup("r", [("a.png", _png(frame)), ("b.png", _png(noisy))], DedupParams(max_residual=b.residual + 0.01))
    assert loose.by_path()["b.png"].duplicate_of == "a.png"  # the residual is the proof's own


def test_a_candidate_bounded_above_half_the_threshold_is_named_with_its_bound_and_not_proven() -> None:
    """An image's first candidate is proven only when its lower bound is at most half of max_residual (FIRST_BOUND:
    a copy's bound stays near 0). Beyond it the kept image names the candidate with that bound, a residual at least
    that large; raising max_residual raises the limit with it, so the copy is proven and archived then."""
    from dedup_engine.grouping import FIRST_BOUND
    from local_runner.generator import draw_frame

    frame = draw_frame(np.random.default_rng(3), (248, 248))
    noisier = np.clip(np.rint(frame + np.random.default_rng(4).normal(0, 14, frame.shape)), 0, 255).astype(np.uint8)
    result = dedup("r", [("a.png", _png(frame)), ("b.png", _png(noisier))], DedupParams())
    b = result.by_path()["b.png"]
    assert b.status == "unique" and b.nearest is None and b.residual is None and result.timings is not None
    bound = float(b.reason.split("residual at least (bound) ")[1].split(",")[0])
    limit = FIRST_BOUND * DedupParams().max_residual
    assert limit < bound <= DedupParams().max_residual
    assert b.reason == (f"kept: nearest kept a.png: residual at least (bound) {bound:.3f}, above the {limit:.3f} a "
                        "copy's bound stays within: not proven (1 candidates)")
    loose = dedup("r", [("a.png", _png(frame)), ("b.png", _png(noisier))], DedupParams(max_residual=1.5))
    assert loose.by_path()["b.png"].duplicate_of == "a.png"
    assert 1.0 < loose.by_path()["b.png"].residual <= 1.5  # what the bound stood for: well beyond 0.75


def test_hash_candidates_are_optional_and_change_nothing_here(engine_data: Path, engine_truth: dict) -> None:
    """max_distance > 0 adds the nearest phashes to the layout signatures' candidates (the index is then built);
    on the labelled test images it finds nothing the signatures missed."""
    from dedup_engine.engine import decide
    from dedup_engine.fingerprints import fingerprint
    from dedup_engine.grouping import Grouper

    sources = [(name, (engine_data / name).read_bytes()) for name in sorted(engine_truth["files"])]
    by_default = dedup("r", sources, DedupParams())
    with_hash = dedup("r", sources, DedupParams(max_distance=10))
    assert [o.duplicate_of for o in by_default.files] == [o.duplicate_of for o in with_hash.files]
    assert by_default.counts.duplicate >= 10
    fps = [fingerprint(name, data, DedupParams(max_distance=10)) for name, data in sources[:10]]
    for params, indexed in ((DedupParams(), 0), (DedupParams(max_distance=10), 1)):
        grouper = Grouper(params)
        for fp in fps:
            grouper.keep(fp)
        assert (len(grouper._raw) > 0) == bool(indexed)
    assert decide(fps, DedupParams(max_distance=10)) == decide(fps, DedupParams())


@settings(max_examples=300, deadline=None)
@given(path=st.text(alphabet=st.sampled_from(list("aB1 20._/9é")), max_size=16))
def test_the_natural_key_is_acquisition_order(path: str) -> None:
    """Numbers compare as numbers ("img2" before "img10"), text without case, part by part."""
    import re

    reference = tuple((0, int(part), part) if part.isdigit() else (1, 0, part.lower())
                      for part in re.split(r"(\d+)", path) if part)
    assert natural_key(path) == reference
    assert sorted(["img10.png", "img2.png", "Img1.png", "a/img3.png"], key=natural_key) == [
        "a/img3.png", "Img1.png", "img2.png", "img10.png"]


def test_a_moved_copy_is_proven_where_the_foreground_centroids_meet() -> None:
    """The grouper hands each proof both images' foreground centroids (computed by the workers beside the centred
    signature): a shifted CytPix-like frame is archived with a proof that names that placement, and a frame with no
    foreground (no centroid) is still decided."""
    from local_runner.generator import draw_frame, shift

    frame = draw_frame(np.random.default_rng(5), (248, 248), 1)
    sources = [("run/a_001.png", _png(frame)), ("run/a_002.bmp", _png(shift(frame, 3, -2), "BMP")),
               ("run/a_003.png", _png(np.full((248, 248), 90, np.uint8)))]
    result = dedup("run", sources, DedupParams(), workers=1)
    copy = result.by_path()["run/a_002.bmp"]
    assert copy.status == "duplicate" and copy.duplicate_of == "run/a_001.png"
    assert "foreground centroids" in (copy.reason or ""), copy.reason
    assert result.by_path()["run/a_003.png"].status == "unique"
