"""The static HTML report: a folder that works from file:// (nothing to serve, nothing fetched).

    index.html          summary cards, plots (plots/*.svg), per-repository tables, the pair table
    pairs/<page>.html   one page per pair: both agents' steps and messages on one timeline, each
                        patch, the merge outcome and each feature's test log
    static/             the style sheet and the table's sort-and-filter script (our own)

Templates are Jinja2 with autoescaping on: everything an agent wrote (messages, patches, logs)
is text, never markup, and a Content-Security-Policy allows only the report's own script.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import jinja2

from ..errors import UserError
from ..statuses import AgentStatus
from ..store import db
from ..store.backends import StoreError, read_url, size_of_url
from . import plots, text
from .rows import Rows, agent_cost, merge_outcome

HERE = Path(__file__).parent
CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'"
MAX_TEXT = 20_000  # characters of one timeline entry or log shown (the rest is cut, and says so)
MAX_TRAJECTORY = 50 * 2**20  # bytes of a trajectory file read

PLOT_TITLES = {
    "pass_rate_per_repo": "Pass rate per repository, each experiment side by side (95% CI)",
    "difference_per_repo": "Difference in pass rate per repository (first experiment − each other, 95% CI)",
    "pass_rate_against_cost": "Pass rate against mean known cost per pair",
    "merge_rates": "Naive-merge conflict rate and union-merge rescue rate",
}


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.globals.update(ci=text.ci, signed=text.signed, pct=text.pct, denominator=text.denominator_line, csp=CSP)
    return env


def _cut(value: str) -> str:
    if len(value) <= MAX_TEXT:
        return value
    return value[:MAX_TEXT] + f"\n… ({len(value) - MAX_TEXT} more characters not shown)"


def _tail(url: str | None) -> str:
    """The end of a test log, read from the artifact store (wherever the worker wrote it)."""
    if not url:
        return "(no log recorded)"
    try:
        size = size_of_url(url)
        data = None if size is None else read_url(url, max(0, size - 4 * MAX_TEXT))
    except StoreError as exc:
        return f"(log not readable: {exc})"
    if data is None:
        return "(no log recorded)"
    text = data.decode("utf-8", errors="replace")
    if len(text) <= MAX_TEXT and len(data) == size:
        return text
    return f"(only the last {MAX_TEXT} characters of {size} bytes shown) …\n" + text[-MAX_TEXT:]


def page_name(index: int, pair_key: str) -> str:
    return f"e{index}-" + re.sub(r"[^A-Za-z0-9_.-]", "_", pair_key) + ".html"


def _trajectory(run: db.AgentRun) -> list[dict]:
    if not run.trajectory_path:
        return []
    try:
        size = size_of_url(run.trajectory_path)
        if size is None or size > MAX_TRAJECTORY:
            return []
        steps = json.loads((read_url(run.trajectory_path) or b"{}").decode(errors="replace")).get("trajectory", [])
    except (StoreError, ValueError, AttributeError):
        return []
    return [s for s in steps if isinstance(s, dict)]


def _entry_text(step: dict) -> str:
    parts = []
    if "to" in step:
        parts.append(f"to {step['to']}:")
    if "feature" in step:
        parts.append(f"feature {step['feature']}: {'ok' if step.get('ok') else 'not ok'}")
    for key in ("content", "output"):
        if step.get(key):
            parts.append(str(step[key]))
    return _cut("\n".join(parts))


def timeline(runs: list[db.AgentRun], messages: list[db.MessageRow]) -> list[dict]:
    """Both agents' steps and the pair's messages, ordered by time (a step without a time follows the one before)."""
    events = []
    for run in runs:
        t = run.started_at.replace(tzinfo=UTC).timestamp() if run.started_at else 0.0
        for n, step in enumerate(_trajectory(run)):
            t = float(step.get("time") or t)
            events.append((t, 0, n, run.agent_id, str(step.get("role", "")), _entry_text(step), False))
    for m in messages:
        events.append((m.sent_at, 1, m.seq, m.sender, f"message to {m.recipient}", _cut(m.body), True))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    start = events[0][0] if events else 0.0
    return [
        {
            "t": t - start,
            "agent": who,
            "agent_class": re.sub(r"[^a-z0-9]", "", who.lower()),
            "role": role,
            "text": body,
            "message": is_message,
        }
        for t, _, _, who, role, body, is_message in events
    ]


def pair_context(database: str, experiment: str, pair_key: str) -> dict:
    pid = f"{experiment}|{pair_key}"
    row = db.get(database, db.PairRun, pid)
    runs = sorted(db.query(database, db.AgentRun, pair_id=pid), key=lambda r: r.agent_id)
    messages = sorted(db.query(database, db.MessageRow, pair_id=pid), key=lambda m: m.seq)
    evals = sorted(db.query(database, db.Evaluation, pair_id=pid), key=lambda e: e.feature)
    agents = []
    for r in runs:
        cost = agent_cost(r)
        agents.append(
            {
                "agent_id": r.agent_id,
                "features": r.features,
                "status": r.status,
                "error": r.error,
                "steps": r.steps,
                "messages_sent": r.messages_sent,
                "messages_received": r.messages_received,
                "duration": r.duration,
                "cost": "cost unknown" if cost is None else f"${cost:.4f}",
                "patch": _cut(r.patch or "") if r.status != AgentStatus.SKIPPED else "(not started)",
            }
        )
    return {
        "experiment": experiment,
        "pair": pair_key,
        "row": row,
        "outcome": merge_outcome(row),
        "patch_status": row.patch_status or {},
        "agents": agents,
        "timeline": timeline(runs, messages),
        "evaluations": [{**e.model_dump(), "log": _tail(e.log_path)} for e in evals],
    }


def build(rows: Rows, report: dict, database: str, folder: str | Path) -> Path:
    """Write the report folder; returns the path of its index.html."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} exists and is not a folder")
    (folder / "pairs").mkdir(parents=True, exist_ok=True)
    (folder / "plots").mkdir(exist_ok=True)
    shutil.copytree(HERE / "static", folder / "static", dirs_exist_ok=True)
    env = _env()
    names = [s["experiment"] for s in report["experiments"]]

    figures = []
    for name, make in plots.PLOTS.items():
        svg = make(report)
        entry = {"name": name, "title": PLOT_TITLES[name], "file": None, "missing": "needs two experiments"}
        if svg is not None:
            (folder / "plots" / f"{name}.svg").write_text(svg)
            entry["file"] = f"plots/{name}.svg"
        figures.append(entry)

    pairs = []
    pair_template = env.get_template("pair.html")
    frame = rows.pairs.astype(object)
    for record in frame.where(frame.notna(), None).to_dict("records"):  # missing values as None, not NaN
        index = names.index(record["experiment"])
        page = page_name(index, record["pair"])
        cost = record["cost_usd"]
        known = cost is not None
        pairs.append(
            {
                **record,
                "page": f"pairs/{page}",
                "result": ("yes" if record["both_passed"] else "no") if record["scored"] else "not scored",
                "cost_text": f"{cost:.4f}" if known else "unknown",
                "cost_sort": f"{cost:.6f}" if known else "-1",
            }
        )
        context = pair_context(database, record["experiment"], record["pair"])
        (folder / "pairs" / page).write_text(pair_template.render(**context))

    index = folder / "index.html"
    index.write_text(
        env.get_template("index.html").render(
            report=report,
            names=names,
            plots=figures,
            pairs=pairs,
            repos=sorted(set(rows.pairs["repo"])),
            made=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        )
    )
    return index
