"""Grading: what turns two patches into a verdict, and the checks of a dataset.

`merge_and_test` applies each agent's patch on its own branch, merges them (naive, then
union) and runs every feature's tests in a fresh sandbox; `patchcheck` refuses patches
that could reach outside the repository; `patchutil` reads unified diffs and drops
test-file sections; `testparse` reads pytest, go, cargo, jest and vitest output;
`checks` validates a dataset (tests fail on the base, pass with gold) and finds which
pairs' gold patches conflict.
"""
