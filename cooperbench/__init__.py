"""CooperBench farm: can coding agents work together as teammates?

`from cooperbench import run, evaluate` is the Python API; `app` is the Celery app that
`celery -A cooperbench worker` and `celery -A cooperbench flower` find. Both load on
first use, so importing a submodule stays light.
"""

__all__ = ["app", "evaluate", "run", "status"]


def __getattr__(name: str):
    if name == "app":
        from .farm.app import app

        return app
    if name in ("run", "evaluate", "status"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'cooperbench' has no attribute {name!r}")
