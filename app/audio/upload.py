"""Receive a multipart upload straight to a temporary file, the file part counted as it streams.

Starlette's own form parsing spools the whole body before the endpoint sees it; for 100 MB
recordings over village networks we write the one file part to disk as it arrives. The
body's size, idle time and deadline are the middleware's (``app.middleware``: one guard
for every body, before authentication); here only the file part's own size is checked.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fastapi import HTTPException, Request
from python_multipart.multipart import MultipartParser, parse_options_header

from app.errors import (
    InsufficientStorage,
    Invalid,
    LoaxaError,
    PayloadTooLarge,
    disk_full,
)


class UnsupportedMediaType(LoaxaError):
    status_code = 415


@dataclass
class ReceivedFile:
    path: Path
    filename: str | None
    size: int


def _limit_message(limit: int) -> str:
    return f"the upload is larger than the {limit // (1024 * 1024)} MB limit"


async def receive_file(
    request: Request, *, field: str, dest_dir: Path, max_bytes: int
) -> ReceivedFile:
    """Stream the multipart field `field` into a temp file in dest_dir; 413 past max_bytes."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise UnsupportedMediaType(f"send the audio as multipart/form-data with a '{field}' field")
    fd, name = tempfile.mkstemp(dir=dest_dir, prefix="upload-", suffix=".part")
    sink = _FieldSink(field, os.fdopen(fd, "wb"), max_bytes)
    parser = MultipartParser(params[b"boundary"], callbacks=sink.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        sink.out.close()
        if not sink.found:
            raise Invalid(f"the multipart field '{field}' is missing")
        if sink.size == 0:
            raise Invalid("the audio file is empty")
    except BaseException as exc:
        sink.out.close()
        Path(name).unlink(missing_ok=True)
        if disk_full(exc):
            raise InsufficientStorage(
                "the server's disk is full: the upload could not be received (nothing was "
                "stored); free some space and send it again"
            ) from exc
        if isinstance(exc, Exception) and not isinstance(exc, LoaxaError | OSError | HTTPException):
            raise Invalid(f"the multipart body is malformed: {exc}") from exc
        raise
    return ReceivedFile(Path(name), sink.filename, sink.size)


class _FieldSink:
    """Multipart callbacks that write one named field to a file, counting its bytes."""

    def __init__(self, field: str, out: BinaryIO, max_bytes: int) -> None:
        self.field, self.out, self.max_bytes = field, out, max_bytes
        self.headers: dict[bytes, bytes] = {}
        self.header_name = b""
        self.header_value = b""
        self.current: str | None = None
        self.found = False
        self.filename: str | None = None
        self.size = 0

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
        }

    def on_part_begin(self) -> None:
        self.headers = {}
        self.current = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_name.lower()] = self.header_value
        self.header_name = self.header_value = b""

    def on_headers_finished(self) -> None:
        _, disp = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.current = disp.get(b"name", b"").decode("utf-8", "replace")
        if self.current == self.field:
            if self.found:
                raise Invalid(f"send exactly one '{self.field}' field")
            self.found = True
            raw = disp.get(b"filename")
            self.filename = raw.decode("utf-8", "replace") if raw else None

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.current != self.field:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            raise PayloadTooLarge(_limit_message(self.max_bytes))
        self.out.write(data[start:end])
