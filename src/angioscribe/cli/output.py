"""Shared printing for commands: JSON lines for machines, rich tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from angioscribe.progress import progress, stderr  # noqa: F401  (re-exported for commands)


def to_json(value: Any) -> str:
    """JSON with numpy scalars and paths converted; one line per record."""
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def print_records(records: Sequence[dict[str, Any]], as_json: bool, columns: Sequence[str]) -> None:
    """JSON lines on stdout with `--json`, otherwise a table with the given columns."""
    if as_json:
        for record in records:
            sys.stdout.write(to_json(record) + "\n")
        return
    table = Table(*columns)
    for record in records:
        table.add_row(*(_cell(record.get(column)) for column in columns))
    Console().print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):  # an interval or other short sequence of values
        return "[" + ", ".join(_cell(item) for item in value) + "]"
    return str(value)
