"""The one error contract every command follows: records, exit codes, valid JSON.

A command handles many inputs. Each input ends as one record: what was found, or an `error`
naming the problem (`{"path": ..., "error": ...}`). Records are printed as soon as they are made
(`--json`: one JSON line each, flushed) so a batch that dies late keeps what it did. The exit
code says how the batch went, the same in every command, so scripts can rely on it:

    0  every input was done
    1  some inputs failed (their errors reported), the rest were done
    2  usage error (bad option or argument; typer/click exits 2 on its own)
    3  nothing could be done (every input failed, or no input was found)

Commands that write a file format instead of records (COCO results, analysis.json) keep the
format, list failed inputs in it, and end with `finish(done, failed)`.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from types import TracebackType
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from angioscribe.progress import stderr


class ExitCode(IntEnum):
    """How a batch went; the same meaning in every command."""

    OK = 0
    SOME_FAILED = 1
    USAGE = 2
    NOTHING_DONE = 3


def exit_code(done: int, failed: int) -> ExitCode:
    """The contract's code for a batch with `done` inputs done and `failed` failed."""
    if done == 0:
        return ExitCode.NOTHING_DONE
    return ExitCode.SOME_FAILED if failed else ExitCode.OK


def finish(done: int, failed: int) -> None:
    """End a command that wrote a file format (not records) with the contract's exit code."""
    raise typer.Exit(int(exit_code(done, failed)))


def error_record(path: str | Path, problem: str, **extra: Any) -> dict[str, Any]:
    """The record of an input that failed: which one (`path`) and why (`error`)."""
    return {"path": str(path), "error": problem, **extra}


def to_json(value: Any) -> str:
    """One line of valid JSON: numpy values and paths converted, NaN/Infinity as null.

    `allow_nan=False` makes a non-finite number that slipped past the sanitiser an error here
    rather than a `NaN` token no JSON parser accepts downstream.
    """
    return json.dumps(json_safe(value), ensure_ascii=False, allow_nan=False)


def json_safe(value: Any) -> Any:
    """`value` as plain JSON types; non-finite floats become None ("unknown")."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item) for item in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist"):  # numpy arrays and scalars, without importing numpy here
        return json_safe(value.tolist())
    if hasattr(value, "to_dict"):
        return json_safe(value.to_dict())
    return str(value)


class RecordSink:
    """Where a command's records go, and how its exit code is decided.

    Use as a context manager around the loop over inputs. With `as_json` each record is
    written to stdout at once; otherwise records are kept and shown as one table at the end
    (also when an exception escapes the loop, so nothing done is lost). Leaving the block
    normally raises `typer.Exit` with the contract's code.
    """

    def __init__(
        self,
        as_json: bool,
        columns: Sequence[str],
        title: str | None = None,
        console: Console | None = None,
    ) -> None:
        self.as_json = as_json
        self.columns = tuple(columns)
        self.title = title
        self.console = console or Console()
        self.records: list[dict[str, Any]] = []
        self.done = 0
        self.failed = 0

    def emit(self, record: dict[str, Any]) -> None:
        """Count one input's record and print it now (`--json`) or keep it for the table."""
        if record.get("error") is not None:
            self.failed += 1
        else:
            self.done += 1
        if self.as_json:
            sys.stdout.write(to_json(record) + "\n")
            sys.stdout.flush()
        else:
            self.records.append(record)

    def fail(self, path: str | Path, problem: str, **extra: Any) -> None:
        """Emit the error record of an input that could not be done."""
        self.emit(error_record(path, problem, **extra))

    def exit_code(self) -> ExitCode:
        return exit_code(self.done, self.failed)

    def __enter__(self) -> RecordSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self.as_json and self.records:
            self.console.print(records_table(self.records, self.columns, self.title))
        if exc_type is not None:
            return  # the exception goes on; what was done is already printed
        if self.failed:
            stderr.print(f"{self.failed} of {self.done + self.failed} inputs failed")
        elif not self.done:
            stderr.print("nothing to do: no inputs found")
        raise typer.Exit(int(self.exit_code()))


def records_table(
    records: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None
) -> Table:
    """A table that stays readable at 80 columns: paths by name relative to their common
    folder (named in the caption), long cells folded onto more lines instead of cut short."""
    paths = [str(record["path"]) for record in records if record.get("path") is not None]
    parent = common_parent(paths)
    caption = f"paths relative to {parent}" if parent else None
    table = Table(title=title, caption=caption)
    for column in columns:
        table.add_column(column, overflow="fold")
    for record in records:
        cells = {**record}
        if parent and cells.get("path") is not None:
            cells["path"] = os.path.relpath(str(cells["path"]), parent)
        table.add_row(*(_cell(cells.get(column)) for column in columns))
    return table


def common_parent(paths: Sequence[str]) -> str | None:
    """The deepest folder holding every path, or None when there is none worth naming."""
    if not paths:
        return None
    try:
        parent = os.path.commonpath([os.path.dirname(os.path.normpath(p)) or "." for p in paths])
    except ValueError:  # absolute and relative paths mixed
        return None
    return None if parent in ("", ".") else parent


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):  # an interval or other short sequence of values
        return "[" + ", ".join(_cell(item) for item in value) + "]"
    return str(value)
