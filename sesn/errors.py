"""The package's errors for bad input: library code raises them, only ``sesn.cli`` turns them
into a one-line message and exit status 2 (``--debug``: the traceback)."""

from __future__ import annotations


class SesnError(Exception):
    """A problem with what the user asked for or supplied (an argument, a file, missing data)."""


class InputError(SesnError, ValueError):
    """A bad argument or combination of arguments."""


class MissingInputError(SesnError, FileNotFoundError):
    """Data or a file the command needs is not there (the message says how to get it)."""
