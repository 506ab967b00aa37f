"""The one Celery app of the farm, configured from `celeryconfig.py` (itself environment-driven)."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from celery import Celery


def _load_config() -> dict:
    try:
        module = importlib.import_module("celeryconfig")
    except ImportError:
        path = Path.cwd() / "celeryconfig.py"
        if not path.is_file():
            path = Path(__file__).resolve().parent.parent / "celeryconfig.py"
        spec = importlib.util.spec_from_file_location("celeryconfig", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k.islower()
            and not callable(v) and k != "os"}


app = Celery("cooperbench", include=["cooperbench.tasks"])
app.conf.update(_load_config())
