"""The one error the engine raises for bad input: it names the file, the column and the fault."""

from __future__ import annotations


class InputError(ValueError):
    """Input the engine refuses (missing column, empty or non-tabular file, wrong type, ...).

    ``str(error)`` is one line that says which file, which column and what is wrong; the
    ``report`` command prints it on stderr and exits 2, the API will answer it as a 400.
    """

    def __init__(self, message: str, *, source: str | None = None, column: str | None = None):
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
