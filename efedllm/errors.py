"""The error type every layer raises for conditions a user can fix (bad input, no chain, a revert).

The command line prints these as one line without a traceback; anything else is a bug and keeps its
traceback under ``--debug``.
"""


class EfedError(Exception):
    """A failure with a message that tells the user what went wrong and, where possible, what to do."""


class InvalidParameter(EfedError, ValueError):
    """A configuration value out of range, caught before anything is sent."""
