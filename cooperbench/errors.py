"""The one exception the user sees: bad input, shown as one line with a non-zero exit.

Everything else that goes wrong inside a pair is recorded in its rows with an error kind
(`statuses.ErrorKind`), never raised to the user.
"""


class UserError(Exception):
    """Bad input from the user: shown as one line, exit code 2, never a traceback."""
