"""One log handler for the command line: rich lines on stderr, library noise kept down.

Commands print results on stdout; everything said to the person goes to stderr through this
one handler, alongside the progress bars (they share the console, so lines appear above a
bar instead of through it). Libraries log at their own levels and Python `warnings` are
routed here too; without `--verbose` only their errors show, because a pydicom warning about
a tag's value is already reported, in words, in the record of the input it belongs to.
"""

from __future__ import annotations

import logging
import warnings

from rich.logging import RichHandler

from angioscribe.progress import stderr


def configure_logging(verbose: bool = False) -> None:
    """Install the handler on the root logger (once; calling again only changes levels)."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _Handler)), None)
    if handler is None:
        handler = _Handler()
        root.addHandler(handler)
    handler.library_level = logging.WARNING if verbose else logging.ERROR
    logging.captureWarnings(True)
    warnings.formatwarning = _one_line_warning
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("angioscribe").setLevel(logging.DEBUG if verbose else logging.INFO)


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, line: str | None = None) -> str:
    """A Python warning as one log line (the default adds the source line below it)."""
    return f"{category.__name__}: {message} ({filename}:{lineno})"


class _Handler(RichHandler):
    """The angioscribe handler: level and logger name, no time or source line.

    Every other logger's records (libraries', and Python warnings, which arrive as the
    `py.warnings` logger) are filtered here, by `library_level`, rather than by setting their
    loggers' levels: pydicom sets its own logger's level when it is imported, which happens
    after this handler is installed (commands import it where they read files).
    """

    def __init__(self) -> None:
        super().__init__(console=stderr, show_time=False, show_path=False, markup=False,
                         rich_tracebacks=True, tracebacks_show_locals=False)
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        self.library_level = logging.ERROR

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == "angioscribe" or record.name.startswith("angioscribe.")
        return super().filter(record) if ours else record.levelno >= self.library_level
