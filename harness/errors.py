"""The one error type users see: a clear one-line message, exit code 2, no traceback."""


class HarnessError(Exception):
    """Bad input or a failed precondition that the user can fix.

    The message must name the file, column, key or value at fault and say what to do.
    """

    exit_code = 2
