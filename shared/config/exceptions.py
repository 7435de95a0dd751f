"""Configuration errors: raised at start-up, so a misconfigured app never takes traffic."""


class ConfigurationError(Exception):
    """One or more app settings are missing or malformed. The message names settings, never values."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"The bridge is not configured correctly:\n{lines}")
