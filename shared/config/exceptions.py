"""Configuration errors: what an app setting lacks, named, never with its value."""

from __future__ import annotations

import re

_SETTING = re.compile(r"^(BRIDGE_[A-Z0-9_]+|AZURE_[A-Z0-9_]+)")


class ConfigurationError(Exception):
    """One or more app settings are missing or malformed. The message names settings, never values.

    Each problem begins with the name of the setting it is about (load_settings writes them so), which
    `settings` lists: what an answer may show to a caller that must not see the problems' wording."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"The bridge is not configured correctly:\n{lines}")

    @property
    def settings(self) -> list[str]:
        named = (_SETTING.match(problem) for problem in self.problems)
        return sorted({match.group(1) for match in named if match is not None})


class AppNotConfigured(ConfigurationError):
    """A function ran while an app-wide setting is missing or invalid (shared.functions.bridge). The
    app still starts, so that the host indexes every function and each one says what is wrong."""
