"""Multipart uploads that meet a full disk: refused with a 507, no partial file left behind.

Django writes an upload over ``FILE_UPLOAD_MAX_MEMORY_SIZE`` to a temporary file in
``FILE_UPLOAD_TEMP_DIR`` while it parses the body. When that write fails for want of space,
the file being written would stay on disk for as long as the request lives: the handler
removes it at once (Django closes, and so removes, the files already complete), and the
parser answers ``insufficient_storage`` (507) in the one error format.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any

from django.core.files import uploadhandler
from django.core.files.uploadedfile import UploadedFile
from rest_framework.parsers import DataAndFiles, MultiPartParser

from core.errors import UPLOAD_NO_SPACE_MESSAGE, insufficient_storage, is_out_of_space


class TemporaryFileUploadHandler(uploadhandler.TemporaryFileUploadHandler):
    """Spools an upload to a temporary file, removed when the upload fails or is cut off."""

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        try:
            super().receive_data_chunk(raw_data, start)
        except BaseException:
            self.upload_interrupted()
            raise

    def file_complete(self, file_size: int) -> UploadedFile | None:
        try:
            return super().file_complete(file_size)  # flushes what is still buffered
        except BaseException:
            self.upload_interrupted()
            raise

    def upload_interrupted(self) -> None:
        file: Any = getattr(self, "file", None)
        if file is None:
            return
        path = file.temporary_file_path()
        with contextlib.suppress(OSError):  # flushing the buffer fails again on a full disk
            file.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


class UploadParser(MultiPartParser):
    """``multipart/form-data`` bodies; a full disk while spooling an upload is a 507."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> DataAndFiles:
        try:
            return super().parse(stream, media_type, parser_context)
        except OSError as exc:
            if is_out_of_space(exc):
                raise insufficient_storage(exc, UPLOAD_NO_SPACE_MESSAGE) from exc
            raise
