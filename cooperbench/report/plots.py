"""The report's plots as SVG files (matplotlib, text kept as text so the numbers can be read back).

Each function takes the report dict (`summary.report`) and returns the SVG as a string, or
None when there is nothing to plot (e.g. the difference plot with a single experiment).
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "cooperbench", "font.size": 9})


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return buf.getvalue()


def _yerr(estimates: list[dict]) -> list[list[float]]:
    lows = [e["value"] - e["low"] if e["low"] is not None else 0.0 for e in estimates]
    highs = [e["high"] - e["value"] if e["high"] is not None else 0.0 for e in estimates]
    return [lows, highs]


def pass_rate_per_repo(report: dict) -> str | None:
    """Pass rate (both passed) per repository, one bar per experiment, with clustered 95% intervals."""
    exps = report["experiments"]
    repos = sorted({r["repo"] for s in exps for r in s["per_repo"] if r["scored"]})
    if not repos:
        return None
    fig, ax = plt.subplots(figsize=(min(11, max(5, 0.9 * len(repos) * len(exps))), 3.4))
    width = 0.8 / len(exps)
    for i, s in enumerate(exps):
        by_repo = {r["repo"]: r["estimate"] for r in s["per_repo"] if r["scored"]}
        xs = [j + i * width for j, repo in enumerate(repos) if repo in by_repo]
        ests = [by_repo[repo] for repo in repos if repo in by_repo]
        bars = ax.bar(xs, [e["value"] for e in ests], width, yerr=_yerr(ests), capsize=3, label=s["experiment"])
        for bar, e in zip(bars, ests, strict=True):
            ax.annotate(pct(e["value"]), (bar.get_x() + bar.get_width() / 2, 0.02), ha="center", fontsize=8)
    ax.set_xticks([j + width * (len(exps) - 1) / 2 for j in range(len(repos))], repos)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("both passed (of scored pairs)")
    ax.legend(fontsize=8)
    ax.set_title("Pass rate per repository (95% CI, bootstrap clustered by task)")
    return _svg(fig)


def difference_per_repo(report: dict) -> str | None:
    """The first experiment minus each other, per repository and overall, with clustered intervals."""
    comps = report["comparisons"]
    if not comps:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 0.5 + 0.45 * sum(len(c["per_repo"]) + 1 for c in comps)))
    labels, ests = [], []
    for c in comps:
        labels.append(f"all ({c['a']} − {c['b']})")
        ests.append(c["both_passed"]["estimate"])
        for r in c["per_repo"]:
            labels.append(f"{r['repo']} ({c['a']} − {c['b']})")
            ests.append(r["difference"]["estimate"])
    ys = list(range(len(labels)))[::-1]
    values = [e["value"] if e["value"] is not None else 0.0 for e in ests]
    ax.errorbar(values, ys, xerr=_yerr(ests), fmt="o", capsize=3)
    for y, e in zip(ys, ests, strict=True):
        ax.annotate(f"{100 * e['value']:+.0f} pts" if e["value"] is not None else "-", (1.02, y), fontsize=8,
                    xycoords=("axes fraction", "data"), va="center")  # fmt: skip
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(ys, labels)
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel("difference in pass rate (95% CI, bootstrap clustered by task)")
    ax.set_title("Difference per repository")
    return _svg(fig)


def pass_rate_against_cost(report: dict) -> str | None:
    """Each experiment's pass rate against its mean known cost per pair; unknown costs are named, not placed."""
    exps = report["experiments"]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    unknown = []
    for s in exps:
        cost = s["cost"]["cost_per_pair_mean_usd"]
        est = s["both_passed"]["estimate"]
        if cost is None or est["value"] is None:
            unknown.append(s["experiment"])
            continue
        ax.errorbar([cost], [est["value"]], yerr=_yerr([est]), fmt="o", capsize=3, label=s["experiment"])
        ax.annotate(f"{s['experiment']}: {pct(est['value'])} at ${cost:.3f}", (cost, est["value"]), fontsize=8,
                    xytext=(5, 5), textcoords="offset points")  # fmt: skip
    if unknown:
        ax.text(0.02, 0.95, "cost unknown: " + ", ".join(unknown), transform=ax.transAxes, fontsize=8, va="top")
    ax.set_ylim(0, 1.05)
    ax.set_xlim(left=0)
    ax.set_xlabel("mean known cost per pair (USD)")
    ax.set_ylabel("both passed")
    ax.set_title("Pass rate against cost")
    return _svg(fig)


def merge_rates(report: dict) -> str | None:
    """Per experiment: how often the naive merge conflicted, and how often the union merge rescued it."""
    exps = report["experiments"]
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(exps)), 3.2))
    width = 0.38
    for k, (key, label) in enumerate((("conflict_rate", "naive merge conflicted"), ("rescue_rate", "union rescued"))):
        values = [s["merge"][key] for s in exps]
        bars = ax.bar([i + k * width for i in range(len(exps))], [v or 0.0 for v in values], width, label=label)
        for bar, v in zip(bars, values, strict=True):
            ax.annotate(pct(v), (bar.get_x() + bar.get_width() / 2, (v or 0.0) + 0.02), ha="center", fontsize=8)
    ax.set_xticks([i + width / 2 for i in range(len(exps))], [s["experiment"] for s in exps])
    ax.set_ylim(0, 1.15)
    ax.legend(fontsize=8)
    ax.set_title("Merge conflicts and union-merge rescues")
    return _svg(fig)


PLOTS = {
    "pass_rate_per_repo": pass_rate_per_repo,
    "difference_per_repo": difference_per_repo,
    "pass_rate_against_cost": pass_rate_against_cost,
    "merge_rates": merge_rates,
}
