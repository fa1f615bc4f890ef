"""Benchmarks: each scenario a script that prints its figures and writes a results file."""
