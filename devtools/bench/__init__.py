"""Benchmarks that print figures (never timed assertions: these machines are shared and noisy)."""
