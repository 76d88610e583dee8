"""Uploaded files kept for a job: stored as ordered UploadChunk rows (never the whole file in memory), so
that a worker on any host can stream them back, and read back as CSV records.

* `store(job_id, chunks, max_bytes)` writes an upload in ~256 KiB chunks (`CHUNK_SIZE`); an empty file
  is REQUIRED on field `file`, one over `max_bytes` LIMIT_EXCEEDED.
* `chunks(job_id)` streams the stored bytes back, `CHUNKS_PER_QUERY` chunks per query.
* `records(job_id)` reads the stored file as CSV text; `exists`, `delete`.

The file, as `records` reads it
-------------------------------
* UTF-8, with or without a byte-order mark. A file that is not UTF-8 (e.g. saved as GBK by Excel)
  raises FileRejected, with a message giving the byte offset and line: a wrong encoding concerns the
  whole file, not one record, and per-record errors would flood the job.
* Fields may be quoted and contain commas, quotes and line breaks; line ends may be LF or CRLF.
* Each record comes with the physical line (1-based) on which it starts. Blank lines and the extra lines
  of quoted multi-line fields are counted, so the number is the line an editor shows, whatever the
  record holds. Blank records (lines without a cell) are returned too: skipping them is the reader's.
"""

from __future__ import annotations

import codecs
import csv
from collections import deque
from collections.abc import AsyncIterator, Iterator

from models.jobs import UploadChunk
from services.errors import DomainError, ErrorCode

CHUNK_SIZE = 256 * 1024
CHUNKS_PER_QUERY = 4


class FileRejected(Exception):
    """The file as a whole cannot be imported (encoding, CSV structure, header): the job FAILS."""


async def store(job_id: int, chunks: AsyncIterator[bytes], max_bytes: int) -> None:
    """Stores the upload of job `job_id` in ordered ~256 KiB UploadChunk rows.

    Streams `chunks` (of any size); never holds more than one stored chunk in memory. An empty file (nothing
    but blanks and a byte-order mark) is REQUIRED on field `file`, one over `max_bytes` LIMIT_EXCEEDED.
    Opens no transaction: run it in the caller's, so that a refused file leaves no chunk behind."""
    buffer = bytearray()
    size = seq = 0
    has_content = False

    async def save(data: bytes) -> None:
        nonlocal seq
        await UploadChunk.create(job_id=job_id, seq=seq, data=data)
        seq += 1

    async for data in chunks:
        if not data:
            continue
        size += len(data)
        if size > max_bytes:
            raise DomainError(
                ErrorCode.LIMIT_EXCEEDED, f"The file is larger than {max_bytes // (1024 * 1024)} MiB; split it", "file"
            )
        if not has_content:
            has_content = bool(bytes(data).strip(b" \t\r\n\xef\xbb\xbf"))
        buffer += data
        while len(buffer) >= CHUNK_SIZE:
            await save(bytes(buffer[:CHUNK_SIZE]))
            del buffer[:CHUNK_SIZE]
    if not has_content:
        raise DomainError(ErrorCode.REQUIRED, "The file is empty", "file")
    if buffer:
        await save(bytes(buffer))


async def exists(job_id: int) -> bool:
    """Whether the upload of job `job_id` is (still) stored."""
    return await UploadChunk.exists(job_id=job_id)


async def delete(job_id: int) -> None:
    """Drops the stored upload of job `job_id` (once every record is done)."""
    await UploadChunk.filter(job_id=job_id).delete()


async def chunks(job_id: int) -> AsyncIterator[bytes]:
    """The upload in order, CHUNKS_PER_QUERY chunks per query (never the whole file at once)."""
    after = -1
    while True:
        rows = (
            await UploadChunk.filter(job_id=job_id, seq__gt=after)
            .order_by("seq")
            .limit(CHUNKS_PER_QUERY)
            .values_list("seq", "data")
        )
        if not rows:
            return
        for seq, data in rows:
            yield bytes(data)
            after = seq


class _NeedMore(Exception):
    pass


class _Lines:
    """Physical lines for csv.reader. When it runs dry before the end of the file it raises _NeedMore,
    and the lines of the unfinished record are put back so that the record is parsed again, whole, once
    more text has arrived (csv.reader keeps no state between records)."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque()
        self.taken: list[str] = []
        self.eof = False

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.lines:
            line = self.lines.popleft()
            self.taken.append(line)
            return line
        if self.eof:
            raise StopIteration
        raise _NeedMore

    def unread(self) -> None:
        self.lines.extendleft(reversed(self.taken))
        self.taken.clear()


async def records(job_id: int) -> AsyncIterator[tuple[int, list[str]]]:
    """(physical line on which the record starts, its fields) for every CSV record, blank ones included.

    Decodes UTF-8 incrementally (a leading BOM is dropped); FileRejected on bytes that are not UTF-8 or
    on text that is not CSV."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
    feed = _Lines()
    reader = csv.reader(feed, strict=False)
    partial = ""
    line = 0  # physical lines consumed by finished records
    offset = 0  # bytes decoded so far

    def decode(data: bytes, final: bool = False) -> str:
        pending = decoder.getstate()[0]  # the start of a character cut by the previous chunk
        try:
            return decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            before = (pending + data)[: exc.start]
            at_line = line + len(feed.lines) + len(feed.taken) + before.count(b"\n") + 1
            raise FileRejected(
                f"The file is not UTF-8 text (invalid byte at offset {offset - len(pending) + exc.start}, "
                f'line {at_line}); save it as "CSV UTF-8" and upload it again'
            ) from None

    def parsed() -> Iterator[tuple[int, list[str]]]:
        nonlocal line
        while True:
            try:
                record = next(reader)
            except _NeedMore:
                feed.unread()
                return
            except StopIteration:
                return
            except csv.Error as exc:
                raise FileRejected(f"The file is not valid CSV at line {line + 1}: {exc}") from None
            start = line + 1
            line += len(feed.taken)
            feed.taken.clear()
            yield start, record

    async for data in chunks(job_id):
        text = partial + decode(data)
        offset += len(data)
        parts = text.split("\n")
        partial = parts.pop()
        feed.lines.extend(part + "\n" for part in parts)
        for item in parsed():
            yield item
    tail = partial + decode(b"", final=True)
    if tail:
        feed.lines.append(tail)
    feed.eof = True
    for item in parsed():
        yield item
