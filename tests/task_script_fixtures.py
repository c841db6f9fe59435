"""Loads task_script/main.py the way the platform does (task_script/ on the path, module "main")."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TASK_DIR = Path(__file__).resolve().parent.parent / "task_script"


def load_main() -> ModuleType:
    spec = importlib.util.spec_from_file_location("task_script_main_under_test", TASK_DIR / "main.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the module's annotations through sys.modules
    spec.loader.exec_module(module)
    return module
