"""The one error type of the patch engine."""


class PatchError(Exception):
    """A patch cannot be parsed, planned or applied; the text says why and is meant for the model
    and the user alike (it names the file and the lines involved)."""


class RollbackError(PatchError):
    """Writing failed half-way and putting some files back failed too: the tree is mixed.

    Rare (the disk went away mid-apply); the message lists the files that could not be restored.
    """
