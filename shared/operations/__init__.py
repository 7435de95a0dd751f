"""Operators' work over the configured Graph and storage, kept apart from the CLI's argument handling."""
