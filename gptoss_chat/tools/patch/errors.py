"""The one error type of the patch engine."""


class PatchError(Exception):
    """A patch cannot be parsed, planned or applied; the text says why and is meant for the model
    and the user alike (it names the file and the lines involved)."""
