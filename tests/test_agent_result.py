"""--result-to-agent: the run's result in unique/<run>/ beside its unique files, sent by the uploader too."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from dedup_engine.models import DedupResult
from local_runner import cli, commands
from local_runner.agent_result import agent_result_path
from local_runner.generator import generate
from local_runner.layout import Layout
from local_runner.records import RunRecords


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("generated"), 30, 10, seed=7, progress=False).run_dir


def _drop_zone(tmp_path: Path, generated: Path) -> Path:
    root = tmp_path / "W"
    shutil.copytree(generated, root / "run-0001")
    return root


def _run(root: Path, *extra: str) -> int:
    return cli.main([str(root), "--once", "--settle-seconds", "0", "--no-progress", "--workers", "2", *extra])


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_result_is_left_in_unique_and_uploaded_beside_the_unique_files(tmp_path: Path, generated: Path,
                                                                           moto_server, bucket: str) -> None:
    root = _drop_zone(tmp_path, generated)
    upload = ["--upload-to", f"s3://{bucket}/lab", "--s3-endpoint-url", moto_server.endpoint_url]
    assert _run(root, "--result-to-agent", *upload) == 0
    left = root / "unique/run-0001/run-0001.dedup-result.json"
    recorded = RunRecords(Layout(root).records("run-0001")).result_path
    assert left.read_bytes() == recorded.read_bytes()  # the final record: where every file went
    result = DedupResult.model_validate_json(left.read_bytes())
    assert result.counts.duplicate > 0 and all((root / o.destination).is_file() for o in result.files)
    stored = moto_server.objects("lab/")
    assert stored["lab/run-0001/run-0001.dedup-result.json"]["sha256"] == _sha(left)
    uniques = {f"lab/run-0001/{o.path}" for o in result.files if o.status == "unique"}
    assert set(stored) == uniques | {"lab/run-0001/run-0001.dedup-result.json", "lab/run-0001/.dedup/result.json"}


def test_without_the_option_unique_holds_only_the_run_files(tmp_path: Path, generated: Path) -> None:
    root = _drop_zone(tmp_path, generated)
    assert _run(root) == 0
    assert not list((root / "unique/run-0001").glob("*.dedup-result*"))


def test_the_result_never_takes_the_name_of_a_file_of_the_run(tmp_path: Path, generated: Path) -> None:
    root = _drop_zone(tmp_path, generated)
    own = root / "run-0001/run-0001.dedup-result.json"
    own.write_text('{"from": "the instrument"}')  # an input that happens to carry the name
    digest = _sha(own)
    assert _run(root, "--result-to-agent") == 0
    assert _sha(root / "unique/run-0001/run-0001.dedup-result.json") == digest  # passed through, untouched
    left = root / "unique/run-0001/run-0001.dedup-result (1).json"
    assert DedupResult.model_validate_json(left.read_bytes()).by_path()["run-0001.dedup-result.json"].status == \
        "passthrough"
    # a late file under the result's own name is moved beside it under another name, never over it
    (root / "run-0001/run-0001.dedup-result (1).json").write_text('{"late": true}')
    assert _run(root, "--result-to-agent") == 0
    result = DedupResult.model_validate_json(left.read_bytes())
    late = result.by_path()["run-0001.dedup-result (1).json"]
    assert late.destination != "unique/run-0001/run-0001.dedup-result (1).json"
    assert json.loads((root / late.destination).read_text()) == {"late": True}
    assert agent_result_path(Layout(root), result) == "unique/run-0001/run-0001.dedup-result (1).json"


def test_restore_updates_the_result_left_for_the_agent(tmp_path: Path, generated: Path) -> None:
    root = _drop_zone(tmp_path, generated)
    assert _run(root, "--result-to-agent") == 0
    left = root / "unique/run-0001/run-0001.dedup-result.json"
    duplicate = next(o for o in DedupResult.model_validate_json(left.read_bytes()).files if o.status == "duplicate")
    assert commands.run("restore", [str(root), "run-0001", duplicate.path]) == 0
    after = DedupResult.model_validate_json(left.read_bytes())
    assert after.by_path()[duplicate.path].status == "restored" and after.counts.restored == 1
