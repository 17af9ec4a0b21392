"""The one error the data-file reader raises: it names the file, the column and the fault."""

from __future__ import annotations


class DataFileError(ValueError):
    """A file that cannot be read as asked (missing, empty, not a table, a missing or
    duplicated column, values of no readable type, not UTF-8).

    ``str(error)`` is one line, ``"<source>, column '<name>': <reason>"`` (either part left
    out when unknown); ``reason``, ``source`` and ``column`` keep the parts, so that a caller
    may re-raise the fault as its own error without changing a character of it.
    """

    def __init__(self, message: str, *, source: str | None = None, column: str | None = None):
        self.reason = message
        self.source = source
        self.column = column
        parts = []
        if source:
            parts.append(source)
        if column is not None:
            parts.append(f"column {column!r}")
        prefix = ", ".join(parts)
        self.message = f"{prefix}: {message}" if prefix else message
        super().__init__(self.message)
