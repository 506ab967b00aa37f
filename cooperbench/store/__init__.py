"""Where results are kept: the result tables, the per-pair records, and the artifacts on disk.

`db` holds the SQLModel tables and idempotent writes (every row keyed by what it describes);
`results` turns rows into the `status --json` records and the summary table; `artifacts`
owns every file name of a pair's folder (`PairPaths`) and writes them whole or not at all.
"""
