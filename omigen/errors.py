"""Exceptions with a meaning for the command line: user errors exit with status 2."""


class OmigenError(Exception):
    """Base class of omigen's own errors."""


class OmigenInputError(OmigenError, ValueError):
    """Bad input from the user: a missing file, a wrong format, an unknown option.

    The CLI prints the message on one line and exits with status 2, without a
    traceback unless ``--debug`` is given. Messages name the offending thing.
    """


class PluginError(OmigenError):
    """A plugin failed to import, or one of its hooks raised or registered nonsense."""
