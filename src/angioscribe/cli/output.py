"""Shared printing for commands: JSON lines for machines, rich tables for people.

The error contract (records, exit codes, valid JSON) lives in `angioscribe.cli.contract`;
these are the shared printers and re-exports commands import from one place.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.console import Console

from angioscribe.cli.contract import records_table, to_json  # noqa: F401  (re-exported)
from angioscribe.progress import progress, stderr  # noqa: F401  (re-exported for commands)


def print_records(records: Sequence[dict[str, Any]], as_json: bool, columns: Sequence[str]) -> None:
    """JSON lines on stdout with `--json`, otherwise a table with the given columns.

    For a batch of inputs use `contract.RecordSink`, which also prints as it goes and sets
    the exit code; this is for summaries computed at the end (metrics, one study's rows).
    """
    if as_json:
        for record in records:
            sys.stdout.write(to_json(record) + "\n")
        sys.stdout.flush()
        return
    Console().print(records_table(records, columns))


JsonOption = Annotated[
    bool, typer.Option("--json", help="One JSON object per line on stdout instead of a table.")
]
"""The `--json` switch of every command that prints one record per input."""
