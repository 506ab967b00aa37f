"""The farm's Celery app: settings from `celeryconfig.py` (itself environment-driven) and the tasks.

`app` is what `celery -A cooperbench worker|flower` uses. `create_app(broker)` builds
another app with the same settings and tasks on another broker: the submitting side
uses one per broker URL, and the embedded farm one for its private Redis, so nothing
ever rewires a live app's connections.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from celery import Celery

from ..settings import load_dotenv


def load_config() -> dict:
    """The settings of `celeryconfig.py`: the one on sys.path, in the working folder, or the repository's."""
    try:
        module = importlib.import_module("celeryconfig")
    except ImportError:
        path = Path.cwd() / "celeryconfig.py"
        if not path.is_file():
            path = Path(__file__).resolve().parents[2] / "celeryconfig.py"
        spec = importlib.util.spec_from_file_location("celeryconfig", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return {
        k: v for k, v in vars(module).items() if not k.startswith("_") and k.islower() and not callable(v) and k != "os"
    }


def create_app(broker: str | None = None) -> Celery:
    """A Celery app with the farm's settings and tasks; `broker` (a Redis URL) replaces the configured one."""
    from .tasks import register

    app = Celery("cooperbench")
    app.conf.update(load_config())
    if broker:
        app.conf.update(broker_url=broker, result_backend=broker)
    register(app)
    return app


load_dotenv()  # a worker's API keys may live in the working folder's .env
app = create_app()
