"""StatementCounter: the SQL statements sent through Tortoise's connections while it is active.

Used by the tests (statement-count assertions), the API benchmark (statements per request) and the EXPLAIN
script of tests/perf. Tortoise's own query counting sees only the default connection's statements; this patches
the connection's class and its subclasses, the transaction wrappers among them, so statements inside
transactions count too. A statement is counted once even when one counted method calls another."""

from __future__ import annotations

import contextvars
from collections.abc import Callable

SENDING = ("execute_query", "execute_query_dict", "execute_insert", "execute_many", "execute_script")
SAVEPOINTS = ("savepoint", "release_savepoint", "savepoint_rollback")
_SAVEPOINT_MARKS = frozenset(name.upper() for name in SAVEPOINTS)


class StatementCounter:
    """`sent` holds the statements, and savepoints by their method's name in capitals; `values` holds each
    entry's bound values (for execute_many the first row's: the rest share its plan). `when`, if given, is asked
    before each statement: statements sent while it says False (other tasks' work) are not recorded."""

    def __init__(self, when: Callable[[], bool] | None = None) -> None:
        self.sent: list[str] = []
        self.values: list[list] = []
        self._when = when
        self._patched: list[tuple[type, str, object]] = []
        # Per task: a page's loaders send their statements concurrently, and one task's nesting must not hide
        # another task's statement.
        self._depth: contextvars.ContextVar[int] = contextvars.ContextVar("statement_depth", default=0)

    def __enter__(self) -> StatementCounter:
        from tortoise import Tortoise
        from tortoise.backends.base.client import BaseDBAsyncClient

        # The connection's class may inherit the sending methods (a subclass of Tortoise's client, core/db.py):
        # they are patched where they are defined, on its bases, and on every subclass (transaction wrappers).
        connection_class = type(Tortoise.get_connection("default"))
        classes: list[type] = []
        pending = [cls for cls in connection_class.__mro__ if issubclass(cls, BaseDBAsyncClient)]
        while pending:
            cls = pending.pop()
            if cls not in classes:
                classes.append(cls)
                pending.extend(cls.__subclasses__())
        for cls in classes:
            for name in (*SENDING, *SAVEPOINTS):
                if name in vars(cls):
                    self._patch(cls, name, vars(cls)[name])
        return self

    def _patch(self, cls: type, name: str, original) -> None:
        savepoint = name in SAVEPOINTS

        async def counted(client, *args, **kwargs):
            depth = self._depth.get()
            if depth == 0 and (self._when is None or self._when()):
                self._record(name, savepoint, args, kwargs)
            token = self._depth.set(depth + 1)
            try:
                return await original(client, *args, **kwargs)
            finally:
                self._depth.reset(token)

        setattr(cls, name, counted)
        self._patched.append((cls, name, original))

    def _record(self, name: str, savepoint: bool, args: tuple, kwargs: dict) -> None:
        if savepoint:
            self.sent.append(name.upper())
            self.values.append([])
            return
        self.sent.append(str(args[0] if args else kwargs.get("query")))
        values = list((args[1] if len(args) > 1 else kwargs.get("values")) or [])
        self.values.append(list(values[0]) if name == "execute_many" and values else values)

    def __exit__(self, *exc) -> None:
        for cls, name, original in reversed(self._patched):
            setattr(cls, name, original)
        self._patched.clear()

    def clear(self) -> None:
        self.sent.clear()
        self.values.clear()

    @property
    def statements(self) -> list[str]:
        return [s for s in self.sent if s not in _SAVEPOINT_MARKS]

    @property
    def count(self) -> int:
        return len(self.statements)

    def reads(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith("SELECT")]

    def with_values(self) -> list[tuple[str, list]]:
        """(statement, values) of each statement, savepoints left out."""
        return [(s, v) for s, v in zip(self.sent, self.values, strict=True) if s not in _SAVEPOINT_MARKS]
