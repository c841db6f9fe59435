"""Write the JSON Schemas of the contract models into ``schemas/`` (checked in; a test fails when they drift).

    python -m local_runner.schema_export [OUT_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from dedup_engine.models import DedupParams, DedupResult, FileOutcome, FolderManifest

MODELS: dict[str, type[BaseModel]] = {
    "folder-manifest": FolderManifest,
    "dedup-params": DedupParams,
    "file-outcome": FileOutcome,
    "dedup-result": DedupResult,
}
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "schemas"


def render(model: type[BaseModel]) -> str:
    schema = model.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def export(out: Path = DEFAULT_DIR) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in MODELS.items():
        path = out / f"{name}.schema.json"
        path.write_text(render(model), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for path in export(Path(args[0]) if args else DEFAULT_DIR):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
