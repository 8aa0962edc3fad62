"""Benchmarks and their corpus generators: `make bench` runs bench/run.py."""
