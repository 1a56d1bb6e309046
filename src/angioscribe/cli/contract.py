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

import os
import sys
from collections.abc import Callable, Sequence
from enum import IntEnum
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import typer
from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from angioscribe.batch import attempt, error_record, to_json
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


def record_of(path: str | Path, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`make()`'s record for one input (with its `path`), or the error record of why not."""
    return records_of(path, lambda: [{"path": str(path), **make()}])[0]


def records_of(
    path: str | Path, make: Callable[[], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """`make()`'s records for one input, or one error record of why they could not be made."""
    records, error = attempt(path, make)
    return [error] if error is not None else records  # type: ignore[return-value]


class RecordSink:
    """Where a command's records go, and how its exit code is decided.

    Use as a context manager around the loop over inputs. With `as_json` each record is
    written at once as a JSON line (to stdout, or `stream`, e.g. a JSON-lines file); otherwise
    records are kept and shown as one table at the end (also when an exception escapes the
    loop, so nothing done is lost). Leaving the block normally raises `typer.Exit` with the
    contract's code.
    """

    def __init__(
        self,
        as_json: bool,
        columns: Sequence[str] = (),
        title: str | None = None,
        console: Console | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.as_json = as_json
        self.columns = tuple(columns)
        self.title = title
        self.console = console or Console()
        self.stream = stream
        self.records: list[dict[str, Any]] = []
        self.done = 0
        self.failed = 0

    def emit(self, record: dict[str, Any], inputs: int = 1) -> None:
        """Print a record now (`--json`) or keep it for the table, and count the `inputs` it
        accounts for: 1 for an input's record, 0 for a further record of the same input (a
        frame's scores, a table row), n for a result made of n inputs (a study's cines)."""
        if record.get("error") is not None:
            self.failed += inputs
        else:
            self.done += inputs
        if self.as_json:
            stream = self.stream or sys.stdout
            stream.write(to_json(record) + "\n")
            stream.flush()
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
) -> Group:
    """Records as a table that stays readable at 80 columns, problems listed below it.

    Paths are shown relative to their common folder (named below it); long cells fold
    onto more lines instead of being cut short. Failures (`error`) and `warnings` are
    `name: problem` lines under the table, where a sentence has the whole width rather than
    one narrow column.
    """
    paths = [str(record["path"]) for record in records if record.get("path") is not None]
    parent = common_parent(paths)

    def shown(record: dict[str, Any]) -> dict[str, Any]:
        cells: dict[str, Any] = {column: _cell(record.get(column)) for column in columns}
        cells.update(path=_cell(record.get("path")), error=_cell(record.get("error")),
                     warnings=record.get("warnings") or [])
        if parent and cells["path"]:
            cells["path"] = os.path.relpath(os.path.abspath(cells["path"]), parent)
        return cells

    done = [shown(record) for record in records if record.get("error") is None]
    failed = [shown(record) for record in records if record.get("error") is not None]
    table_columns = [column for column in columns if column not in _LISTED_BELOW]
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    for column in table_columns:  # "primary_angle" as two header lines: narrower column
        table.add_column(column.replace("_", "\n"), overflow="fold")
    for row in done:
        table.add_row(*(row[column] for column in table_columns))
    parts: list[Any] = [table] if done else []
    parts += [Text(f"warning: {row['path']}: {warning}", style="yellow")
              for row in done for warning in row["warnings"]]
    parts += [Text(f"failed: {row['path']}: {row['error']}", style="red") for row in failed]
    if parent:
        parts.append(Text(f"(paths relative to {parent})", style="dim"))
    return Group(*parts)


# Record fields that are sentences: listed under the table at full width, not as columns.
_LISTED_BELOW = frozenset({"error", "warnings"})


def common_parent(paths: Sequence[str]) -> str | None:
    """The deepest folder holding every path, or None when only the root holds them all."""
    if not paths:
        return None
    folders = [os.path.dirname(os.path.abspath(path)) for path in paths]
    parent = os.path.commonpath(folders)
    return None if parent == os.path.dirname(parent) else parent  # the root is no help


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):  # an interval or other short sequence of values
        return "[" + ", ".join(_cell(item) for item in value) + "]"
    return str(value)
