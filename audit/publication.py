"""The checkpointer's own copy of the notes it signed: ``AUDIT_CHECKPOINT_PUBLISH_DIR``.

The directory lives outside the database, so someone who rewrites the records and deletes
checkpoint rows still cannot get the rewrite signed: the checkpointer checks every new tree
against the latest note here (AUDIT_SPEC.md section 5). It holds ``<size>.note`` for every
checkpoint and ``latest.note``, a copy of the largest; both are written atomically (a
temporary file, then a link or rename), and a ``<size>.note`` is never replaced. Anything
may serve the directory as static files: notes are public.

This module only stores and finds bytes; ``audit.checkpoints`` verifies them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path

LATEST = "latest.note"
_NUMBERED = re.compile(r"(0|[1-9][0-9]*)\.note\Z")
_PUBLIC_MODE = 0o644
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


class PublishConflict(RuntimeError):
    """A ``<size>.note`` already exists with other bytes; it is left as it is."""

    def __init__(self, path: Path, existing: bytes) -> None:
        super().__init__(f"{path} already exists with different content")
        self.path = path
        self.existing = existing


def _note_size(note: bytes) -> int | None:
    """The tree size on a checkpoint note's second line, if it has one."""
    lines = note.split(b"\n", 2)
    if len(lines) < 3 or not _NUMBERED.match(lines[1].decode("ascii", "replace") + ".note"):
        return None
    return int(lines[1])


class PublishDir:
    """``<size>.note`` files and ``latest.note`` in one directory, created on first write."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def note_path(self, size: int) -> Path:
        return self.path / f"{size}.note"

    def read(self, size: int) -> bytes | None:
        """The bytes of ``<size>.note``, or None."""
        try:
            return self.note_path(size).read_bytes()
        except FileNotFoundError:
            return None

    def latest(self) -> tuple[Path, bytes] | None:
        """``latest.note`` (path, bytes); if it is missing, the largest ``<size>.note``."""
        try:
            return self.path / LATEST, (self.path / LATEST).read_bytes()
        except FileNotFoundError:
            pass
        try:
            sizes = [
                int(m.group(1)) for name in os.listdir(self.path) if (m := _NUMBERED.match(name))
            ]
        except FileNotFoundError:
            return None
        if not sizes:
            return None
        path = self.note_path(max(sizes))
        return path, path.read_bytes()

    def _temporary(self, data: bytes) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.path, prefix=".tmp-", suffix=".note")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(name, _PUBLIC_MODE)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
            raise
        return Path(name)

    def _sync_directory(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def publish(self, size: int, note: bytes) -> None:
        """Store ``note`` as ``<size>.note`` and, unless a larger one is there, ``latest.note``.

        Raises ``PublishConflict`` (and changes nothing) when ``<size>.note`` exists with
        different bytes; identical bytes are accepted (a re-run after a crash).
        """
        target = self.note_path(size)
        temporary = self._temporary(note)
        try:
            try:
                os.link(temporary, target)  # fails if the target exists: never replaced
            except FileExistsError:
                existing = target.read_bytes()
                if existing != note:
                    raise PublishConflict(target, existing) from None
            except OSError as exc:
                if exc.errno not in _NO_HARD_LINKS:
                    raise
                # A filesystem without hard links: check, then rename (checkpointers hold
                # their lock while publishing, so nobody else writes in between).
                stored = self.read(size)
                if stored is None:
                    os.replace(self._temporary(note), target)
                elif stored != note:
                    raise PublishConflict(target, stored) from None
            current = self.latest()
            current_size = _note_size(current[1]) if current else None
            if current_size is None or current_size <= size:
                # A file of its own, not a second link to <size>.note's inode.
                os.replace(self._temporary(note), self.path / LATEST)
            self._sync_directory()
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
