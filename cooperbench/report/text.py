"""The report as text for a terminal: each experiment's summary, then each comparison."""

from __future__ import annotations


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def ci(est: dict) -> str:
    """'62.5% [41.0%, 80.2%]', or without the interval when there are fewer than two tasks."""
    if est["value"] is None:
        return "-"
    if est["low"] is None:
        return f"{pct(est['value'])} (one task: no interval)"
    return f"{pct(est['value'])} [{pct(est['low'])}, {pct(est['high'])}]"


def signed(est: dict) -> str:
    if est["value"] is None:
        return "-"
    sign = lambda x: f"{100 * x:+.1f} pts"
    if est["low"] is None:
        return sign(est["value"])
    return f"{sign(est['value'])} [{sign(est['low'])}, {sign(est['high'])}]"


def denominator_line(d: dict) -> str:
    return (
        f"{d['pairs']} pair(s): {d['scored']} scored, {d['infra_errors']} infrastructure error(s), "
        + (f"{d['evaluation_errors']} not graded (a test runner ran no test), " if d.get("evaluation_errors") else "")
        + f"{d['skipped']} skipped (not started), {d['unfinished']} unfinished"
    )


def experiment(s: dict) -> list[str]:
    d = s["denominator"]
    lines = [
        f"== {s['experiment']} ({s['setting']}, agent {s['agent']}"
        + (f", model {s['model']}" if s["model"] else "")
        + ")",
        denominator_line(d),
        f"  rates are over the {d['scored']} scored pair(s), whose agent and input errors count as failures "
        f"({d['scored_agent_errors']} agent, {d['scored_input_errors']} input); 95% intervals: bootstrap clustered "
        "by task",
        f"both passed:   {s['both_passed']['passed']}/{d['scored']}  {ci(s['both_passed']['estimate'])}",
        f"clean success: {s['clean_success']['passed']}/{d['scored']}  {ci(s['clean_success']['estimate'])}",
    ]
    if d["disrupted"]:
        lines.append(f"team disrupted in {d['disrupted']} scored pair(s)")
    lines.append("per repository:")
    for r in s["per_repo"]:
        lines.append(
            f"  {r['repo']:28} {r['both_passed']}/{r['scored']} scored  {ci(r['estimate'])}"
            + (
                f"  (+{r['infra_errors']} infra, "
                + (f"{r['evaluation_errors']} not graded, " if r.get("evaluation_errors") else "")
                + f"{r['skipped']} skipped, {r['unfinished']} unfinished)"
                if r["pairs"] > r["scored"]
                else ""
            )
        )
    lines.append("per task:")
    for r in s["per_task"]:
        lines.append(f"  {r['task']:28} {r['both_passed']}/{r['scored']} scored")
    m = s["merge"]
    outcomes = ", ".join(f"{k} {v}" for k, v in m["outcomes"].items() if v)
    lines.append(
        f"merge outcomes (scored pairs): {outcomes or 'none'}; naive merge conflicted in {pct(m['conflict_rate'])} "
        f"of merged pairs, the union merge rescued {pct(m['rescue_rate'])} of those"
    )
    lines.append("agent end statuses: " + ", ".join(f"{k} {v}" for k, v in s["agent_statuses"].items() if v))
    c = s["communication"]
    if c:
        lines.append(
            f"communication: {c['messages']} message(s) in {c['pairs']} pair(s), {c['messages_per_pair_mean']:.1f} per "
            f"pair (median {c['messages_per_pair_median']:g}); nobody wrote in {c['silent_pairs']} pair(s); "
            f"{pct(c['message_step_share'])} of steps spent messaging"
        )
    k = s["cost"]
    unknown = (
        f" (+ unknown for {k['agents_cost_unknown']} of {k['agents']} agent run(s))" if k["agents_cost_unknown"] else ""
    )
    per_pair = "-" if k["cost_per_pair_mean_usd"] is None else f"${k['cost_per_pair_mean_usd']:.4f}"
    lines.append(
        f"cost: ${k['known_cost_usd']:.4f} known{unknown}; per pair with a known cost {per_pair}; "
        f"tokens {k['input_tokens']} in, {k['output_tokens']} out; agent time {k['agent_seconds']:.0f} s"
    )
    return lines


def comparison(c: dict) -> list[str]:
    bp = c["both_passed"]
    n = bp["counts"]
    lines = [
        f"== {c['a']} vs {c['b']}: {c['pairs']} pair(s) scored in both, {c['tasks']} task(s)",
        f"both passed: {pct(c['rate_a'])} vs {pct(c['rate_b'])}; difference {c['a']} − {c['b']}: "
        f"{signed(bp['estimate'])} (95% bootstrap clustered by task)",
        f"  both pass {n['both']}, only {c['a']} {n['only_a']}, only {c['b']} {n['only_b']}, neither {n['neither']} "
        f"(exact McNemar p = {n['mcnemar_p']:.3g}, ignoring clustering)",
        f"clean success difference: {signed(c['clean_success']['estimate'])}",
        "per repository (difference, both/only a/only b/neither):",
    ]
    for r in c["per_repo"]:
        k = r["counts"]
        lines.append(
            f"  {r['repo']:28} {pct(r['rate_a'])} vs {pct(r['rate_b'])}  {signed(r['difference']['estimate'])}  "
            f"{k['both']}/{k['only_a']}/{k['only_b']}/{k['neither']}"
        )
    for label, keys in ((f"only in {c['a']}", c["only_in_a"]), (f"only in {c['b']}", c["only_in_b"])):
        if keys:
            lines.append(f"{label} (left out): {len(keys)}: " + ", ".join(keys))
    if c["not_scored_in_both"]:
        lines.append(
            f"not scored in both (left out): {len(c['not_scored_in_both'])}: "
            + ", ".join(f"{x['pair']} ({x['status_a']}/{x['status_b']})" for x in c["not_scored_in_both"])
        )
    return lines


def render(report: dict) -> str:
    lines: list[str] = []
    for s in report["experiments"]:
        lines += experiment(s) + [""]
    for c in report["comparisons"]:
        lines += comparison(c) + [""]
    return "\n".join(lines).rstrip() + "\n"
