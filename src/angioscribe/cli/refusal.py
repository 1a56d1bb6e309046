"""A command that cannot do its one job: say why, as the contract's error record, and exit 3.

Batch commands report failed inputs through `contract.RecordSink` and go on. Commands that
compute one result from their inputs (a metric, a training run, a simulated dataset, an import)
cannot go on without them: they refuse, naming the input and the problem, with exit code 3
(nothing done), and print the error record on stdout too under `--json`, so a script reading
the records sees why there are none.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import typer

from angioscribe.cli.contract import ExitCode, error_record, to_json


def refuse(error: Exception, as_json: bool = False, source: str | Path = "") -> NoReturn:
    """Print `error` (an `InputError` names its input; others are named by `source`), exit 3."""
    path = getattr(error, "source", None) or str(source)
    problem = getattr(error, "problem", None) or str(error)
    if as_json:
        sys.stdout.write(to_json(error_record(path, problem)) + "\n")
        sys.stdout.flush()
    typer.echo(f"error: {path}: {problem}" if path else f"error: {problem}", err=True)
    raise typer.Exit(int(ExitCode.NOTHING_DONE))
