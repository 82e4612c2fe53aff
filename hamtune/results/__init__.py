"""Everything about stored results; train, sweep, report and export all read and write them through here.

store.py         the results folder: versioned Parquet files (trials, epochs, scores) and samples, written atomically
rank.py          what is ranked against what, and the top trials of a results folder
reproduction.py  the statistics of reproduce.parquet: did a configuration hold on new seeds?
numbers.py       numbers for people: 4 significant digits everywhere
layout.py        every entry of a results folder, named once (plain strings: importing it loads nothing)
chosen.py        the chosen model, recorded once in chosen.json and read by everything that names it
"""
