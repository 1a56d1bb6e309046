"""Shared printing for commands: JSON lines for machines, rich tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

T = TypeVar("T")
stderr = Console(stderr=True)


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
    return str(value)


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """A progress bar on stderr, so stdout stays machine-readable."""
    items = list(items) if total is None else items
    total = len(items) if total is None else total  # type: ignore[arg-type]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=True, disable=not stderr.is_terminal) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
