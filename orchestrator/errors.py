"""User-facing errors: the CLI prints them as one line and exits with status 2."""


class UserError(Exception):
    """A problem with the user's input; the CLI prints it as one line and exits 2."""


class SearchFinished(Exception):
    """Resume was asked for a search that has already finished: not an error (exit 0)."""
