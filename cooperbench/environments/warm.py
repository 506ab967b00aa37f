"""The warm run's patch: what a task's runner is given when an environment is prepared with network.

Preparing runs the task's own runner once with network so that whatever it installs or
caches is kept (host caches for `local`, a committed image for containers). It is given, as
its test patch, a harmless patch that only adds a marker file: never a gold patch nor a
hidden test, so neither can be left behind for agents to find (a wheel built from the gold
sources in uv's cache, a non-editable install, a stray `.pyc`). The gold runs that follow
are offline and decide whether the environment is ready.
"""

from __future__ import annotations

WARM_PATCH_NAME = "cooperbench-warm.patch"
WARM_PATCH = """diff --git a/.cooperbench-warm-run b/.cooperbench-warm-run
new file mode 100644
--- /dev/null
+++ b/.cooperbench-warm-run
@@ -0,0 +1 @@
+a run with network, to install and cache what the runner needs
"""
