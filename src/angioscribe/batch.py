"""The batch boundary, for the library and the commands alike: one input's failure becomes
its error record (`{"path": ..., "error": ...}`) and the batch goes on; records are made of
plain JSON values, never NaN or Infinity.

The commands' exit codes and printing build on this in `angioscribe.cli.contract`; the chain
(`analyze`) uses it directly, so the library does not depend on the command line.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from angioscribe.errors import AngioscribeError, InputError

log = logging.getLogger(__name__)
T = TypeVar("T")


def error_record(path: str | Path, problem: str, **extra: Any) -> dict[str, Any]:
    """The record of an input that failed: which one (`path`) and why (`error`)."""
    return {"path": str(path), "error": problem, **extra}


def attempt(path: str | Path, work: Callable[[], T]) -> tuple[T | None, dict[str, Any] | None]:
    """(`work()`'s result, None), or (None, the error record of `path`) when it failed.

    This is the batch boundary: an `InputError` (or other deliberate `AngioscribeError`) names
    the problem; anything else is a bug, logged with its traceback and reported as an error
    record, so one input can never take the rest of the batch down with it.
    """
    try:
        return work(), None
    except InputError as error:
        return None, error_record(path, error.problem)
    except AngioscribeError as error:
        return None, error_record(path, str(error))
    except Exception as error:  # the batch boundary: a bug, logged with its traceback
        log.error("unexpected error on %s", path, exc_info=True)
        return None, error_record(path, f"unexpected error ({type(error).__name__}: {error})")


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
