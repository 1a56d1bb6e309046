"""Errors that name the input and the problem, so a batch can report and go on."""

from __future__ import annotations

from pathlib import Path


class AngioscribeError(Exception):
    """Base class for errors angioscribe raises on purpose."""


class InputError(AngioscribeError):
    """An input (file, folder, text) could not be used; says which one and why."""

    def __init__(self, source: str | Path, problem: str) -> None:
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")
