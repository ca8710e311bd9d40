"""The one error importers raise for bad input."""


class ImportInputError(ValueError):
    """Bad importer input; the message names the file, the column or field, and the row or line."""
