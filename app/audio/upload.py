"""Receive a multipart upload straight to a temporary file, enforcing the size limit as it streams.

Starlette's own form parsing spools the whole body before the endpoint sees it; for 100 MB
recordings over village networks we want to stop reading the moment the limit is passed.
A sender that stops sending for `idle_s`, or has not finished after `deadline_s`, is cut
off with 408 (a slow-loris upload would otherwise hold a worker's connection for ever).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from app.errors import (
    InsufficientStorage,
    Invalid,
    LoaxaError,
    PayloadTooLarge,
    RequestTimeout,
    disk_full,
)

# Multipart framing around the file: boundaries and part headers.
FRAMING_SLACK = 64 * 1024


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
    request: Request,
    *,
    field: str,
    dest_dir: Path,
    max_bytes: int,
    idle_s: float = 30.0,
    deadline_s: float = 1800.0,
) -> ReceivedFile:
    """Stream the multipart field `field` into a temp file in dest_dir.

    413 past max_bytes; 408 when nothing arrives for idle_s or the whole body takes longer
    than deadline_s.
    """
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise UnsupportedMediaType(f"send the audio as multipart/form-data with a '{field}' field")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + FRAMING_SLACK:
        raise PayloadTooLarge(_limit_message(max_bytes))

    fd, name = tempfile.mkstemp(dir=dest_dir, prefix="upload-", suffix=".part")
    sink = _FieldSink(field, os.fdopen(fd, "wb"), max_bytes)
    parser = MultipartParser(params[b"boundary"], callbacks=sink.callbacks())  # type: ignore[arg-type]
    received = 0
    deadline = time.monotonic() + deadline_s
    chunks = request.stream().__aiter__()
    try:
        while True:
            wait = min(idle_s, deadline - time.monotonic())
            try:
                chunk = await asyncio.wait_for(chunks.__anext__(), timeout=max(wait, 0.001))
            except StopAsyncIteration:
                break
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise RequestTimeout(
                        f"the upload took longer than {deadline_s:g} s; send it again"
                    ) from None
                raise RequestTimeout(
                    f"the upload stopped arriving for {idle_s:g} s; send it again"
                ) from None
            received += len(chunk)
            if received > max_bytes + FRAMING_SLACK:
                raise PayloadTooLarge(_limit_message(max_bytes))
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
        if isinstance(exc, Exception) and not isinstance(exc, LoaxaError | OSError):
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
