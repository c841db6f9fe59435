from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def engine_data() -> Path:
    return DATA / "engine"


@pytest.fixture(scope="session")
def engine_truth(engine_data: Path) -> dict:
    return json.loads((engine_data / "truth.json").read_text())


@pytest.fixture(scope="session")
def bad_inputs() -> Path:
    return DATA / "bad-inputs"
