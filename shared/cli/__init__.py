"""Operators' command line: `python -m shared.cli`."""
