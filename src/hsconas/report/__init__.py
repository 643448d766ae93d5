"""Plots and reports, drawn from pure data functions (the only package that imports matplotlib)."""
