"""The one exception type that reaches users as a single line instead of a traceback."""


class GanforgeError(Exception):
    """A problem the user can fix: bad input, missing files, invalid settings.

    The message names the problem and what to do about it; the CLI prints it on one line
    and exits with status 2.
    """
