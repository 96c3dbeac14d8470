"""Rendering: aligned tables chosen per resource, or the API's own objects as JSON/YAML."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

FORMATS = ("table", "json", "yaml")
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


class Names(Protocol):
    """Turns another resource's id into its name for a table (`output.Refs` below)."""

    def name(self, path: str, object_id: str | None) -> str | None: ...


Getter = Callable[[dict, Names], Any]


@dataclass(frozen=True)
class Column:
    header: str
    value: str | Getter  # a field of the object, or a function of it

    def get(self, obj: dict, names: Names) -> Any:
        return obj.get(self.value) if isinstance(self.value, str) else self.value(obj, names)


def cell(value: Any) -> str:
    """One value as table text: `-` for nothing, local time for timestamps."""
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and _TIMESTAMP.match(value):
        return local_time(value)
    if isinstance(value, dict):
        return " ".join(f"{k}={cell(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ",".join(cell(v) for v in value)
    return str(value)


def local_time(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def table(headers: Sequence[str] | None, rows: Iterable[Sequence[str]]) -> str:
    """Columns two spaces apart, each as wide as its widest cell; the last one unpadded."""
    lines = [list(headers)] if headers else []
    lines += [list(row) for row in rows]
    if not lines:
        return ""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for line in lines:
        padded = [text.ljust(width) for text, width in zip(line[:-1], widths, strict=False)]
        out.append("  ".join([*padded, line[-1]]).rstrip())
    return "\n".join(out)


def rows_table(
    rows: Sequence[dict], columns: Sequence[Column], names: Names, headers: bool = True
) -> str:
    return table(
        [c.header for c in columns] if headers else None,
        ([cell(c.get(row, names)) for c in columns] for row in rows),
    )


def object_view(obj: dict, subtables: dict[str, Sequence[Column]], names: Names) -> str:
    """`field  value` lines, then each list of objects (an instance's attachments) as an
    indented table: the columns given for it, or every key of its first item."""
    scalars = [(k, v) for k, v in obj.items() if not _is_rows(v)]
    width = max((len(k) for k, _ in scalars), default=0)
    lines = [f"{k.ljust(width)}  {cell(v)}".rstrip() for k, v in scalars]
    for key, value in obj.items():
        if not _is_rows(value):
            continue
        columns = subtables.get(key) or [Column(k.upper(), k) for k in value[0]]
        lines.append(f"{key}:")
        lines += ["  " + line for line in rows_table(value, columns, names).splitlines()]
    return "\n".join(lines)


def _is_rows(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def dump(data: Any, fmt: str) -> str:
    if fmt == "yaml":
        import yaml  # only for -o yaml: the other formats start faster without it

        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip()
    return json.dumps(data, indent=2)
