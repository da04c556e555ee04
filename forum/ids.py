"""One range check for every integer that reaches SQL: ids, page numbers, cursors.

Ids are `Integer` columns: 64-bit on SQLite but 32-bit on PostgreSQL, whose driver
refuses a larger parameter ("integer out of range"), while SQLite's raises OverflowError
past 64 bits. So an id from a URL, a query string or a form is checked here, once,
against the smaller range, before any query sees it. Only ASCII digits count: `str.isdigit`
and `int()` also take other scripts' digits (`"١"` is 1) and superscripts (`"²"`, which
`int()` then refuses).
"""

from __future__ import annotations

from typing import Any

from flask import abort, request
from werkzeug.routing import BaseConverter, Map, ValidationError

MAX_ID = 2**31 - 1  # PostgreSQL `integer`
MAX_BIGINT = 2**63 - 1  # `BigInteger` columns: the WordPress ids of imported records
_MAX_DIGITS = len(str(MAX_ID))


def parse_id(raw: Any, low: int = 1, high: int = MAX_ID) -> int | None:
    """`raw` as an int when it is ASCII digits within low..high; otherwise None."""
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit():
        return None
    if len(raw.lstrip("0")) > _MAX_DIGITS:
        return None
    value = int(raw)
    return value if low <= value <= high else None


def is_id(value: Any, low: int = 1, high: int = MAX_ID) -> bool:
    """For ids that arrive as JSON numbers: a real int (not a bool) within low..high."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


class IdConverter(BaseConverter):
    """`<int:...>` for the whole app: ASCII digits from 1 to MAX_ID, anything else is a 404."""

    regex = r"[0-9]+"
    weight = 50
    part_isolating = True

    def __init__(self, map: Map, min: int = 1, max: int = MAX_ID) -> None:
        super().__init__(map)
        self.min, self.max = min, max

    def to_python(self, value: str) -> int:
        number = parse_id(value, self.min, self.max)
        if number is None:
            raise ValidationError()
        return number

    def to_url(self, value: Any) -> str:
        return str(int(value))


def id_arg(name: str, low: int = 1, high: int = MAX_ID) -> int | None:
    """An id (or a number) from the query string: None when absent or empty, 400 when it
    is not ASCII digits within low..high."""
    raw = request.args.get(name, "")
    if raw == "":
        return None
    value = parse_id(raw, low, high)
    if value is None:
        abort(400, description=f"The address has an impossible {name!r} value.")
    return value
