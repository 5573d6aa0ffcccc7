"""Benchmarks of Suipai: `python -m bench` (or `make bench`) prints one table and writes
bench/RESULTS.md; every figure is measured against a baseline in the same run."""
