"""Reports over finished sweeps: terminal leaderboards (`python -m hamtune.report`) and a self-contained HTML page.

load.py reads results folders, rank.py decides what is ranked against what, tables.py prints the
leaderboards, html.py assembles the page from figures.py, importance.py and images.py.
"""
