"""Task environments: each task's dependencies prepared once per machine, then used offline by every sandbox.

`toolchains` reads what a task's runner needs (uv, npm, Go, cargo; or what blocks it);
`prepared` prepares an environment under a lock (network, gold runs, no agent code),
keys it by the task's content, records its state, and hands sandboxes a
`sandbox.Environment` to use read-only and offline.
"""
