"""The farm: the only part of CooperBench that knows Celery.

`app` builds Celery apps with the farm's settings (`celeryconfig.py`) and its two tasks;
`tasks` holds those tasks (one agent of a pair, and the pair's evaluation), thin wrappers
around `cooperbench.pair`; `submit` plans an experiment (which pairs still need work),
sends one workflow per pair (agent tasks, then the evaluation) and waits for them; `embedded`
is the private broker and in-process worker behind `cooperbench run` with no broker.
"""
