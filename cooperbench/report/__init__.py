"""Reports a researcher can publish: an experiment's rows as tables, honest statistics (clustered by
task), comparisons of experiments on the same pairs, exports and a static HTML report.

    rows.py      the stored rows of experiments as pair-level and agent-level tables (the export columns)
    stats.py     rates with clustered-bootstrap intervals, paired differences, McNemar-style counts
    summary.py   one experiment's summary and the comparison of several: plain dicts (JSON-ready)
    text.py      the summary and comparison as text for a terminal
    export.py    CSV, JSON and Parquet files of the rows
    html.py      the static HTML report folder (templates/ and plots.py)
    live.py      a running experiment's figures so far, for the progress line
"""
