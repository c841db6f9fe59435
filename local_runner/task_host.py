"""Loads the task script's function from task_script/main.py: the very file TetraScience runs, not a copy."""

from __future__ import annotations

import importlib.util
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

TASK_SCRIPT_DIR = Path(__file__).resolve().parent.parent / "task_script"
FUNCTION = "dedup"

TaskFunction = Callable[[dict[str, Any], Any], dict[str, Any]]


@lru_cache(maxsize=1)
def load_task_function(task_dir: Path = TASK_SCRIPT_DIR) -> TaskFunction:
    main = task_dir / "main.py"
    if not main.is_file():
        raise FileNotFoundError(f"{main} not found: the local runner runs the task script from the repository")
    spec = importlib.util.spec_from_file_location("image_dedup_task_main", main)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {main}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the module's annotations through sys.modules
    spec.loader.exec_module(module)
    return getattr(module, FUNCTION)
