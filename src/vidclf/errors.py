"""The one exception type for user errors: the CLI prints its message as one line, no traceback."""


class VidclfError(Exception):
    """A problem with the user's input or configuration; the message names the thing and the fix."""
