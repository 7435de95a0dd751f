"""The CLI's one error type: a message for the operator, exit status 2, never a traceback."""


class CliError(Exception):
    pass
