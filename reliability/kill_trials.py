"""Kill -9 trials: the runner is SIGKILLed at random moments, rerun, and the drop zone is checked after each trial.

    python reliability/kill_trials.py --trials 200 [--images 80 --similar 30 --seed 0 --keep-failures DIR]

Each trial copies a generated run into a fresh drop zone, starts ``python -m local_runner W --once --upload-to ...``
against a real moto server (HTTP on 127.0.0.1) in its own process group, kills the whole group with SIGKILL after a
random delay drawn over the length of a normal pass (so kills land during fingerprinting, decisions, journal writes,
moves and uploads), sometimes kills the rerun too, then lets a final rerun finish. It then checks:
  - every input file exists exactly once among the run folder, unique/ and archive/, with identical sha256;
  - result.json agrees with where the files are (unique -> unique/, duplicate -> archive/, bytes as recorded);
  - the bucket holds exactly the unique images (each once, stored bytes = file bytes) and nothing archived.
Exit code 0 when every trial passes. Needs POSIX (process groups, SIGKILL).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local_runner.generator import generate  # noqa: E402
from local_runner.s3_server import LocalS3  # noqa: E402


@dataclass
class TrialResult:
    number: int
    delay: float
    phase: str
    double_kill: bool
    problems: list[str] = field(default_factory=list)


def digests(root: Path) -> dict[str, str]:
    found = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".dedup") or not path.is_file() or path.is_symlink():
            continue
        found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def runner_command(root: Path, endpoint: str, bucket: str, prefix: str) -> list[str]:
    return [sys.executable, "-m", "local_runner", str(root), "--once", "--settle-seconds", "0", "--no-progress",
            "--workers", "2", "--upload-to", f"s3://{bucket}/{prefix}", "--s3-endpoint-url", endpoint,
            "--log-level", "WARNING"]


def start(command: list[str], stderr_to: Path) -> subprocess.Popen:
    """The runner in its own process group, its stderr appended to ``stderr_to`` (kept for a failed trial)."""
    with stderr_to.open("ab") as stderr:  # the child holds its own descriptor; ours closes here
        return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)


def kill_after(process: subprocess.Popen, delay: float) -> bool:
    """SIGKILL the process group after ``delay`` seconds; False if it had already finished."""
    try:
        process.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True


def phase_of(root: Path, run: str) -> str:
    records = root / ".dedup" / "runs" / run
    state_file = records / "state.json"
    if not (records / "result.json").exists() or not state_file.exists():
        return "deciding"
    state = json.loads(state_file.read_text())
    if state["status"] == "processed":
        return "finished"
    journal = records / "journal.jsonl"
    ops = Counter(json.loads(line)["op"] for line in journal.read_text().splitlines() if line.strip().endswith("}")) \
        if journal.exists() else Counter()
    return "moving" if ops["plan"] > ops["done"] + ops["failed"] else "uploading"


def check(root: Path, run: str, original: dict[str, str], s3: LocalS3, prefix: str) -> list[str]:
    problems = []
    now = digests_through(root)
    if Counter(now.values()) != Counter(original.values()):
        problems.append(f"bytes not conserved: {len(now)} files now, {len(original)} before")
    for rel, sha in original.items():
        inner = rel.split("/", 1)[1]
        places = [p for p in (rel, f"unique/{run}/{inner}", f"archive/{run}/{inner}") if now.get(p) == sha]
        if len(places) != 1:
            problems.append(f"{rel}: found in {places or 'no place'}")
    result_file = root / ".dedup" / "runs" / run / "result.json"
    if not result_file.exists():
        return problems + ["no result.json after the final rerun"]
    result = json.loads(result_file.read_text())
    uniques = {}
    for outcome in result["files"]:
        where = outcome["destination"]
        if outcome["status"] == "duplicate" and not (where or "").startswith(f"archive/{run}/"):
            problems.append(f"{outcome['path']}: duplicate recorded at {where}")
        if outcome["status"] == "unique" and not (where or "").startswith(f"unique/{run}/"):
            problems.append(f"{outcome['path']}: unique recorded at {where}")
        if where and now.get(where) != outcome["sha256"]:
            problems.append(f"{outcome['path']}: result says {where}, which does not hold its bytes")
        if outcome["status"] == "unique":
            uniques[f"{prefix}/{run}/{outcome['path']}"] = outcome["sha256"]
    stored = {k: v["sha256"] for k, v in s3.objects(prefix + "/").items() if "/.dedup/" not in k}
    if stored != uniques:
        extra = sorted(set(stored) - set(uniques))[:3]
        missing = sorted(set(uniques) - set(stored))[:3]
        wrong = [k for k in stored if k in uniques and stored[k] != uniques[k]][:3]
        problems.append(f"bucket differs: extra {extra}, missing {missing}, wrong bytes {wrong}")
    state = json.loads((root / ".dedup" / "runs" / run / "state.json").read_text())
    if state["status"] != "processed" or (state.get("upload") or {}).get("failed"):
        problems.append(f"state after the final rerun: {state['status']}, upload {state.get('upload')}")
    return problems


def prepare(root: Path, template: Path, other_volume: Path | None) -> None:
    """A drop zone holding a copy of the run; with ``other_volume``, unique/ and archive/ live on that file system
    (reached through symbolic links, like a junction on Windows), so every move is a verified cross-volume copy."""
    shutil.copytree(template, root / template.name)
    if other_volume is not None:
        for name in ("unique", "archive"):
            target = Path(tempfile.mkdtemp(prefix=f"{root.name}-{name}-", dir=other_volume))
            (root / name).symlink_to(target, target_is_directory=True)


def digests_through(root: Path) -> dict[str, str]:
    found = digests(root)
    for name in ("unique", "archive"):
        if (root / name).is_symlink():
            found.update({f"{name}/{k}": v for k, v in digests((root / name).resolve()).items()})
    return found


def run_trials(trials: int, *, images: int = 80, similar: int = 30, seed: int = 0, workdir: Path | None = None,
               keep_failures: Path | None = None, other_volume: Path | None = None, log=print) -> list[TrialResult]:
    rng = random.Random(seed)
    base = Path(tempfile.mkdtemp(prefix="kill-trials-", dir=workdir))
    try:
        template = generate(base / "template", images, similar, seed=seed, progress=False).run_dir
        run = template.name
        # moto keeps its buckets per process, and a test session may already have used one named like ours
        bucket = f"trials-{base.name.rsplit('-', 1)[-1].lower().replace('_', '-')}"
        with LocalS3(bucket) as s3:
            calibration = base / "calibration"
            prepare(calibration, template, other_volume)
            started = time.monotonic()
            process = start(runner_command(calibration, s3.endpoint_url, bucket, "calibration"),
                            base / "calibration.stderr")
            first_seen: dict[str, float] = {}
            while process.poll() is None:  # when do the moves and uploads happen in a normal pass?
                try:
                    first_seen.setdefault(phase_of(calibration, run), time.monotonic() - started)
                except (OSError, ValueError):
                    pass
                time.sleep(0.002)
            span = time.monotonic() - started
            moves_from = first_seen.get("moving", first_seen.get("uploading", span)) - 0.03
            uploads_from = first_seen.get("uploading", span)
            windows = [(0.0, span), (max(0.0, moves_from), uploads_from + 0.03), (max(0.0, moves_from), span)]
            log(f"one pass over {images} images takes {span:.2f} s (process start included); moves from "
                f"{moves_from:.2f} s, uploads from {uploads_from:.2f} s; kills drawn in turn from "
                + ", ".join(f"[{a:.2f}, {b:.2f}]" for a, b in windows))
            results = []
            for number in range(1, trials + 1):
                root = base / f"trial-{number:04d}"
                prepare(root, template, other_volume)
                original = digests_through(root)
                prefix = f"t{number:04d}"
                command = runner_command(root, s3.endpoint_url, bucket, prefix)
                delay = rng.uniform(*windows[number % len(windows)])
                stderr_to = base / f"trial-{number:04d}.stderr"
                killed = kill_after(start(command, stderr_to), delay)
                phase = phase_of(root, run) if killed else "not killed (finished first)"
                double = killed and rng.random() < 0.3
                if double:
                    kill_after(start(command, stderr_to), rng.uniform(0.0, span))
                final = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                trial = TrialResult(number, delay, phase, double, check(root, run, original, s3, prefix))
                if final.returncode != 0:
                    trial.problems.append(f"final rerun exit code {final.returncode}: {final.stderr[-500:]}")
                results.append(trial)
                status = "ok" if not trial.problems else "FAILED: " + "; ".join(trial.problems[:3])
                log(f"trial {number:4d}: killed at {delay:5.2f} s ({phase}{', killed again' if double else ''}): {status}")
                if trial.problems and keep_failures is not None:
                    shutil.copytree(root, keep_failures / root.name, dirs_exist_ok=True, symlinks=True)
                    shutil.copy2(stderr_to, keep_failures / stderr_to.name)
                for name in ("unique", "archive"):
                    if (root / name).is_symlink():
                        shutil.rmtree((root / name).resolve())
                shutil.rmtree(root)
        return results
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--images", type=int, default=80)
    parser.add_argument("--similar", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-failures", type=Path, help="copy the drop zone of a failed trial here")
    parser.add_argument("--other-volume", type=Path,
                        help="put unique/ and archive/ on this other file system (e.g. /dev/shm): cross-volume copies")
    args = parser.parse_args(argv)
    started = time.monotonic()
    results = run_trials(args.trials, images=args.images, similar=args.similar, seed=args.seed,
                         keep_failures=args.keep_failures, other_volume=args.other_volume)
    phases = Counter(r.phase for r in results)
    failed = [r for r in results if r.problems]
    print(f"\n{len(results)} trials in {time.monotonic() - started:.0f} s: {len(results) - len(failed)} passed, "
          f"{len(failed)} failed; {sum(r.double_kill for r in results)} with a second kill during the rerun")
    print("kills by phase: " + ", ".join(f"{k} {v}" for k, v in sorted(phases.items())))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
