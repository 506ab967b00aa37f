"""Pair-level and agent-level rows as CSV, JSON or Parquet files (pandas and pyarrow), columns as `rows` documents."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from .rows import Rows

FORMATS = ("csv", "json", "parquet")


def write(rows: Rows, folder: str | Path, fmt: str, report: dict | None = None) -> list[Path]:
    """Write `pairs.<fmt>` and `agents.<fmt>` (and, for JSON, `summary.json`) into `folder`; returns the files."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in (("pairs", rows.pairs), ("agents", rows.agents)):
        path = folder / f"{name}.{fmt}"
        frame = frame.copy()
        for col in ("status", "merge_outcome", "merge_status", "merge_strategy", "error_kind"):
            if col in frame:
                frame[col] = frame[col].map(lambda v: None if v is None else str(v))
        if fmt == "csv":
            frame.to_csv(path, index=False)
        elif fmt == "json":
            frame.to_json(path, orient="records", indent=1, date_format="iso")
        else:
            frame.to_parquet(path, index=False)
        written.append(path)
    if fmt == "json" and report is not None:
        path = folder / "summary.json"
        path.write_text(json.dumps(report, indent=1))
        written.append(path)
    return written
