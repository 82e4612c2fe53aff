"""Reports over finished sweeps: terminal leaderboards (`python -m hamtune.report`) and a self-contained HTML page.

command.py is the command (plain values in, report out); load.py reads results folders; ranking comes from
hamtune.results.rank; tables.py prints the leaderboards; html.py assembles the page from figures.py,
importance.py, images.py and summary.py.
"""
