"""The flag that says this process's running pair steps are abandoned (an interrupted embedded run).

The embedded farm sets it on Ctrl-C, after closing every sandbox: the steps still running in
its threads then record nothing, so the next run of the experiment does them again.
"""

import threading

ABANDONED = threading.Event()
