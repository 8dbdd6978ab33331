"""The method comparison (`python -m mtljax.compare`): suites of runs over several seeds,
compared with equal weighting by seed, with the single-task runs (Δm) and with the front of
swept static loss weights.

`python -m mtljax.compare SUITE` (see `__main__`); suites.py says which runs a suite holds,
cells.py runs and finds them, analysis.py computes the statistics (mtljax/outputs/stats.py), and
page.py and figures.py write the results page's section.
"""
