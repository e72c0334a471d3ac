"""Analyses on measured arrays: numpy, scipy, statsmodels, networkx, powerlaw only — never torch."""
