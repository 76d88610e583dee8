"""Every CSV the service writes goes through `writer`: a cell that a spreadsheet would run as a formula
(one beginning with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'` (docs/DOMAIN.md, "Limits and
protection"), so that an audit export or a report opened in Excel never runs what a user typed."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The cell as written: text that starts like a formula is prefixed with `'`; numbers stay numbers (a
    number cannot carry a formula) and None stays empty."""
    if value is None or isinstance(value, bool | int | float | Decimal):
        return value
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class SafeWriter:
    """csv.writer's `writerow` / `writerows`, every cell neutralised."""

    def __init__(self, out: Any, **options: Any) -> None:
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out: Any, **options: Any) -> SafeWriter:
    """Use instead of csv.writer (options as csv.writer's)."""
    return SafeWriter(out, **options)
