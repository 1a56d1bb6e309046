"""Structured logs for the service: one JSON object per line on stderr.

A service's log is read by machines (journald, a log shipper) as much as by people, so each
line is an object with `time` (UTC, ISO 8601), `level`, `logger`, `event` (the message) and the
fields a call adds with `extra=` (`study_uid`, `calling_ae`, `status`, ...). Study and
instance UIDs are identifiers of images, not of people; patient names, IDs and birth dates
never appear. An exception is logged as its type and where it was raised (file, line,
function), never its text, because library messages can quote a header value (a name, a
date). Libraries' own records pass only from `library_level` up, as in the command line.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any, TextIO

# The attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


class JsonFormatter(logging.Formatter):
    """A record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update({key: value for key, value in record.__dict__.items()
                      if key not in _STANDARD and not key.startswith("_")})
        if record.exc_info and record.exc_info[1] is not None:
            entry.update(exception_fields(record.exc_info[1]))
        return json.dumps(entry, ensure_ascii=False, default=str)


def exception_fields(error: BaseException) -> dict[str, Any]:
    """An exception as log fields without its message: its type and the frames it came from."""
    frames = traceback.extract_tb(error.__traceback__)
    return {"error_type": type(error).__name__,
            "error_at": [f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} {frame.name}"
                         for frame in frames[-5:]]}


class _Handler(logging.StreamHandler):
    """The service's handler: JSON lines; other libraries' records from `library_level` up."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.setFormatter(JsonFormatter())
        self.library_level = logging.ERROR

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == "angioscribe" or record.name.startswith("angioscribe.")
        return super().filter(record) if ours else record.levelno >= self.library_level


def configure_json_logging(verbose: bool = False, stream: TextIO | None = None) -> None:
    """Make the root logger write JSON lines (to stderr), replacing any other handler, in the
    service process and in each worker process (a spawned process starts unconfigured)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = _Handler(stream or sys.stderr)
    handler.library_level = logging.WARNING if verbose else logging.ERROR
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    logging.getLogger("angioscribe").setLevel(logging.DEBUG if verbose else logging.INFO)
