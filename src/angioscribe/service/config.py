"""The service's settings: one frozen dataclass, read from a YAML file, overridden by flags.

A cath-lab team keeps one file (`deploy/service.yaml` is a documented example); the flags of
`angioscribe serve` override single values so one command starts the service without a file.
Every value is checked when it is read, and a wrong one is an `InputError` naming the file (or
"command line") and the key, so a typo fails at start-up instead of at the first study.
Relative paths in a file are relative to that file's folder, so a config travels with the
certificates and data folder next to it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from angioscribe.errors import InputError

LANGUAGES = ("en", "ja")
COMMAND_LINE = "command line"


@dataclass(frozen=True)
class Destination:
    """A DICOM node results are C-STOREd to: its AE title, host and port."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Destination:
        """`AET@HOST:PORT`, the form the flag and the config file use (an IPv6 host in
        brackets: `PACS@[fd00::5]:104`)."""
        ae_title, at, address = str(text).partition("@")
        host, colon, port = address.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not (at and colon and host and port.isdigit()):
            raise ValueError(f"{text!r} is not AET@HOST:PORT")
        return cls(ae_title_of(ae_title), host, port_of(int(port), minimum=1))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.ae_title}@{host}:{self.port}"


@dataclass(frozen=True)
class TLSConfig:
    """Certificates for DICOM over TLS, used both by the listener and when sending results.

    `cert`/`key` identify this service; with `ca`, peers must present a certificate signed by
    it (mutual TLS, as the DICOM secure transport profiles ask), and a destination's
    certificate is checked against it instead of the system's authorities.
    """

    cert: Path
    key: Path
    ca: Path | None = None

    def server_context(self) -> ssl.SSLContext:
        """The listener's context: our certificate, and the callers' checked against `ca`."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._load(context)
        if self.ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_context(self) -> ssl.SSLContext:
        """The sender's context: the destination's certificate checked, ours presented."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self._load(context)
        return context

    def _load(self, context: ssl.SSLContext) -> None:
        try:
            context.load_cert_chain(self.cert, self.key)
            if self.ca is not None:
                context.load_verify_locations(self.ca)
        except (OSError, ssl.SSLError) as error:
            raise InputError(self.cert, f"cannot load the TLS certificate, key or CA: {error}"
                             ) from error


@dataclass(frozen=True)
class ServiceConfig:
    """Everything `angioscribe serve` and its workers need (docs/service.md lists each key).

    `queue_url` defaults to a SQLite file in `data_dir`, and `calling_ae_title` (the AE title
    results are sent with) to `ae_title`. `workers` 0 runs the listener alone (studies wait in
    the queue). `shutdown_seconds` is how long a stop waits for workers to finish their study
    before ending them (their study is analysed again at the next start).
    `analysis_timeout_seconds` ends a worker whose study has been analysing longer (a hung
    analysis counts as a failed attempt, so a study that hangs every time ends failed).
    """

    ae_title: str = "ANGIOSCRIBE"
    host: str = "127.0.0.1"
    port: int = 11112
    accept_from: tuple[str, ...] = ()
    destinations: tuple[Destination, ...] = ()
    data_dir: Path = Path("angioscribe-data")
    stable_seconds: float = 10.0
    queue_url: str | None = None
    workers: int = 2
    languages: tuple[str, ...] = LANGUAGES
    drafter: str | None = None
    max_attempts: int = 3
    fhir_dir: Path | None = None
    fhir_endpoint: str | None = None
    tls: TLSConfig | None = None
    health_port: int | None = None
    calling_ae_title: str | None = None
    shutdown_seconds: float = 30.0
    analysis_timeout_seconds: float = 600.0

    def __post_init__(self) -> None:
        if self.queue_url is None:
            object.__setattr__(self, "queue_url", f"sqlite:///{self.data_dir / 'queue.db'}")
        if self.calling_ae_title is None:
            object.__setattr__(self, "calling_ae_title", self.ae_title)

    @property
    def incoming_dir(self) -> Path:
        """Where received instances are stored, one folder per StudyInstanceUID."""
        return self.data_dir / "incoming"

    @property
    def results_dir(self) -> Path:
        """Where each study's analysis and result objects are written."""
        return self.data_dir / "results"


def load_config(path: Path | None = None, **overrides: Any) -> ServiceConfig:
    """The settings of `path` (YAML; None: the defaults), with `overrides` (flag values; None
    means "not given") replacing single keys. Raises InputError naming the file or the command
    line and the key for an unknown key or a wrong value."""
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_checked(_read_yaml(path), path, Path(path).resolve().parent))
    given = {key: value for key, value in overrides.items() if value is not None}
    values.update(_checked(given, COMMAND_LINE, Path.cwd()))
    return ServiceConfig(**values)


def _read_yaml(path: Path) -> Mapping[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise InputError(path, f"cannot read the service config: {error}") from error
    except yaml.YAMLError as error:
        raise InputError(path, f"the service config is not valid YAML: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(path, "the service config must be a mapping of keys to values")
    return data


def _checked(values: Mapping[str, Any], source: str | Path, base: Path) -> dict[str, Any]:
    """Each value converted to its field's type and checked; errors name `source` and key."""
    known = [field.name for field in fields(ServiceConfig)]
    checked = {}
    for key, value in values.items():
        if key not in known:
            raise InputError(source, f"unknown key {key!r} (known keys: {', '.join(known)})")
        try:
            checked[key] = _CONVERTERS[key](value, base)
        except (TypeError, ValueError) as error:
            raise InputError(source, f"{key}: {error}") from error
    return checked


def ae_title_of(value: Any) -> str:
    """An AE title as DICOM allows it: 1-16 printable ASCII characters, no backslash."""
    text = str(value).strip()
    if not 0 < len(text) <= 16 or not text.isascii() or not text.isprintable() or "\\" in text:
        raise ValueError(f"{value!r} is not an AE title (1 to 16 ASCII characters)")
    return text


def port_of(value: Any, minimum: int = 0) -> int:
    """A TCP port; 0 (listen on any free port) only where `minimum` allows it."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= 65535:
        raise ValueError(f"{value!r} is not a port number ({minimum} to 65535)")
    return value


def _number(minimum: float, kind: type = float) -> Callable[[Any, Path], Any]:
    def convert(value: Any, base: Path) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise ValueError(f"{value!r} is not a number of at least {minimum:g}")
        if kind is int and value != int(value):
            raise ValueError(f"{value!r} is not a whole number")
        return kind(value)

    return convert


def _text(value: Any, base: Path) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a non-empty text")
    return value.strip()


def _path(value: Any, base: Path) -> Path:
    return base / Path(_text(str(value) if isinstance(value, Path) else value, base)).expanduser()


def _list_of(convert: Callable[[Any], Any]) -> Callable[[Any, Path], tuple[Any, ...]]:
    def converted(value: Any, base: Path) -> tuple[Any, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError(f"{value!r} is not a list")
        return tuple(convert(item) for item in items)

    return converted


def _language(value: Any) -> str:
    if value not in LANGUAGES:
        raise ValueError(f"{value!r} is not a supported language ({', '.join(LANGUAGES)})")
    return value


def _tls(value: Any, base: Path) -> TLSConfig:
    if isinstance(value, TLSConfig):
        return value
    if not isinstance(value, dict) or not {"cert", "key"} <= set(value) <= {"cert", "key", "ca"}:
        raise ValueError("expects a mapping with cert, key and optionally ca (file paths)")
    return TLSConfig(**{key: _path(item, base) for key, item in value.items()})


_CONVERTERS: dict[str, Callable[[Any, Path], Any]] = {
    "ae_title": lambda value, base: ae_title_of(value),
    "host": _text,
    "port": lambda value, base: port_of(value),
    "accept_from": _list_of(ae_title_of),
    "destinations": _list_of(lambda item: item if isinstance(item, Destination)
                             else Destination.parse(item)),
    "data_dir": _path,
    "stable_seconds": _number(0.0),
    "queue_url": _text,
    "workers": _number(0, int),
    "languages": _list_of(_language),
    "drafter": _text,
    "max_attempts": _number(1, int),
    "fhir_dir": _path,
    "fhir_endpoint": _text,
    "tls": _tls,
    "health_port": lambda value, base: port_of(value),
    "calling_ae_title": lambda value, base: ae_title_of(value),
    "shutdown_seconds": _number(0.0),
    "analysis_timeout_seconds": _number(1.0),
}
