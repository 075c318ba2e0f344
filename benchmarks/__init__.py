"""Benchmarks: commands that print measured figures. Never run as tests."""
