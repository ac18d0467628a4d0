"""Errors in a user's input to a trainable (a table that cannot be used, say). The CLI prints
them as one line and exits with status 2, like orchestrator's own UserError; they live here so
that trainables need nothing from orchestrator (orchestrator builds trainables, not the reverse)."""


class InputError(ValueError):
    """Bad input to a trainable: one line naming the problem."""
