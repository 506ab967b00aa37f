"""One pair's two steps, as plain functions a Celery task (or a test) calls.

`agent_step.run_agent` runs one agent of a pair in a fresh sandbox under the harness's
clock (`timer`), after checking the experiment's `budget`, and records its AgentRun row
with the patch `capture` takes; `eval_step.evaluate_pair` hands the recorded patches to
`cooperbench.grading` and records the pair's rows. Neither raises for anything inside the
pair: every failure is recorded with its kind (`cooperbench.statuses`). `abandon` is the
flag an interrupted embedded run sets so its steps record nothing.
"""
