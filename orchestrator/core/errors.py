"""User-facing errors: the CLI prints them as one line and exits with status 2."""


class UserError(Exception):
    """A problem with the user's input; the CLI prints it as one line and exits 2."""


class RecordsUnsent(Exception):
    """A search ran, but MLflow did not take all of its records; they are kept for `nasorch
    resume`. The CLI prints the one-line message and exits with status 3."""


class SearchFinished(Exception):
    """Resume was asked for a search that has already finished: not an error (exit 0)."""


def first_line(error: BaseException, limit: int | None = None) -> str:
    """An exception's message as one line (its type's name when it has none), for UserErrors
    that wrap a library's multi-line error."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line[:limit] if limit else line
