from __future__ import annotations

import json

import jsonschema
import yaml
import ts_sdk.schemas as schemas

from task_script_fixtures import TASK_DIR, load_main

PROTOCOL = TASK_DIR.parent / "protocol" / "protocol.yml"


def test_config_is_valid_and_slug_equals_function() -> None:
    config = json.loads((TASK_DIR / "config.json").read_text())
    jsonschema.validate(config, schemas.config)
    main = load_main()
    for function in config["functions"]:
        module, name = function["function"].split(".")
        assert module == "main" and callable(getattr(main, name))
        assert function["slug"] == name


def test_manifest_names_namespace_slug_version() -> None:
    manifest = json.loads((TASK_DIR / "manifest.json").read_text())
    assert manifest["namespace"].startswith("private-")
    assert manifest["slug"] and manifest["version"].startswith("v")


def test_protocol_is_valid_v3_and_calls_this_task_script() -> None:
    protocol = yaml.safe_load(PROTOCOL.read_text())
    jsonschema.validate(protocol, schemas.protocolV3)
    manifest = json.loads((TASK_DIR / "manifest.json").read_text())
    config = json.loads((TASK_DIR / "config.json").read_text())
    (step,) = protocol["steps"]
    assert step["task"] == {"namespace": manifest["namespace"], "slug": manifest["slug"],
                            "version": manifest["version"], "function": config["functions"][0]["slug"]}
    assert step["input"]["manifest"] == "$( workflow.inputFile )"
    for name, value in step["input"].items():
        if name != "manifest":
            assert value == f"$( config.{name} )" and name in protocol["config"]


def test_protocol_defaults_are_the_engine_and_io_defaults() -> None:
    import dataclasses

    from dedup_engine import DedupParams
    from lake_io import IoSettings

    defaults = {**DedupParams().model_dump(), **dataclasses.asdict(IoSettings())}
    for name, entry in yaml.safe_load(PROTOCOL.read_text())["config"].items():
        assert entry.get("default") == defaults.get(name), name
