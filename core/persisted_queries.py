"""Automatic persisted queries, in Apollo's convention (APQ): a client sends the SHA-256 of a query's text in
`extensions.persistedQuery.sha256Hash` instead of the text; when this process has not seen that text yet it
answers PERSISTED_QUERY_NOT_FOUND and the client sends text and hash together once, which is then kept.

Only a text whose hash matches is kept, in a bounded least-recently-used map per process: several API
processes each learn a query once. Nothing is trusted from the client but the text itself, which is parsed,
validated and limited like any other."""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from typing import Any

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
SHA256 = re.compile(r"^[0-9a-f]{64}$")
KEPT = 1_000  # queries kept per process
LONGEST_KEPT = 20_000  # characters: the longest text kept (the input size limit of a string)


class PersistedQueryError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PersistedQueries:
    def __init__(self, size: int = KEPT) -> None:
        self.size = size
        self._texts: OrderedDict[str, str] = OrderedDict()

    def query_for(self, query: str | None, extensions: Any) -> str | None:
        """The query text to run: `query` itself, or the text its persisted-query hash names."""
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        if persisted is None:
            return query
        digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        if not isinstance(persisted, dict) or persisted.get("version") != 1 or not isinstance(digest, str):
            raise PersistedQueryError(NOT_SUPPORTED, "Only persisted queries of version 1 with a sha256Hash are known")
        digest = digest.lower()
        if not SHA256.match(digest):
            raise PersistedQueryError(NOT_SUPPORTED, "sha256Hash must be 64 hexadecimal digits")
        if query is None:
            text = self._texts.get(digest)
            if text is None:
                raise PersistedQueryError(NOT_FOUND, "PersistedQueryNotFound")
            self._texts.move_to_end(digest)
            return text
        if not isinstance(query, str) or hashlib.sha256(query.encode()).hexdigest() != digest:
            raise PersistedQueryError("BAD_REQUEST", "The sha256Hash does not match the query")
        if len(query) <= LONGEST_KEPT:
            self._texts[digest] = query
            self._texts.move_to_end(digest)
            while len(self._texts) > self.size:
                self._texts.popitem(last=False)
        return query
