"""`angioscribe serve`: the cath-lab service (DICOM listener, queue, workers, result sending).

Settings come from `--config FILE` (YAML, `deploy/service.yaml` documents every key) and the
flags below, which override single keys of the file, so one command starts the service
without a file. Exit codes: 0 after a SIGTERM/SIGINT stop, 3 when it cannot start (the error
names the file or flag and the problem: an unknown key, a bad value, a port in use).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from angioscribe.cli.refusal import refuse
from angioscribe.errors import AngioscribeError


def serve(
    config: Annotated[Path | None, typer.Option(
        "--config", help="YAML settings file; the flags below override its keys.")] = None,
    port: Annotated[int | None, typer.Option(
        "--port", help="DICOM port to listen on (default: 11112; 0: any free port).")] = None,
    ae_title: Annotated[str | None, typer.Option(
        "--ae-title", help="This service's AE title (default: ANGIOSCRIBE).")] = None,
    accept_from: Annotated[list[str] | None, typer.Option(
        "--accept-from", help="A calling AE title allowed to send (repeatable); without any, "
        "only callers on 127.0.0.1 are accepted.")] = None,
    destination: Annotated[list[str] | None, typer.Option(
        "--destination", help="AET@HOST:PORT to C-STORE results to (repeatable).")] = None,
    data: Annotated[Path | None, typer.Option(
        "--data", help="Folder for received studies, results and the queue "
        "(default: angioscribe-data).")] = None,
    stable_seconds: Annotated[float | None, typer.Option(
        "--stable-seconds", help="A study is complete after this many seconds without a new "
        "instance (default: 10).")] = None,
    queue: Annotated[str | None, typer.Option(
        "--queue", help="Queue database URL, sqlite:///FILE or postgresql+psycopg://... "
        "(default: sqlite:///DATA/queue.db).")] = None,
    host: Annotated[str | None, typer.Option(
        "--host", help="Address to listen on (default: 127.0.0.1; 0.0.0.0: every "
        "interface).")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", help="Worker processes analysing studies (default: 2; 0: receive "
        "only).")] = None,
    health_port: Annotated[int | None, typer.Option(
        "--health-port", help="Port of the HTTP health endpoint GET /health "
        "(default: none).")] = None,
    tls_cert: Annotated[Path | None, typer.Option(
        "--tls-cert", help="PEM certificate of this service: DICOM over TLS, listening and "
        "sending (with --tls-key).")] = None,
    tls_key: Annotated[Path | None, typer.Option(
        "--tls-key", help="PEM private key of --tls-cert.")] = None,
    tls_ca: Annotated[Path | None, typer.Option(
        "--tls-ca", help="PEM authority that callers' and destinations' certificates must be "
        "signed by (mutual TLS).")] = None,
) -> None:
    """Receive XA studies over DICOM, analyse each once complete, send SR, KOS and PDF back.

    Logs are JSON lines on stderr; "listening on HOST:PORT" says the service is ready.
    SIGTERM or Ctrl-C stops it: no new associations, workers finish or release their
    current study, exit 0.
    """
    from angioscribe.service.config import load_config
    from angioscribe.service.serve import serve as run_service

    try:
        settings = load_config(
            config, port=port, ae_title=ae_title, accept_from=accept_from or None,
            destinations=destination or None, data_dir=data, stable_seconds=stable_seconds,
            queue_url=queue, host=host, workers=workers, health_port=health_port,
            tls=_tls_flags(tls_cert, tls_key, tls_ca))
        # The global --verbose has set the angioscribe logger to DEBUG: keep that choice.
        run_service(settings, verbose=logging.getLogger("angioscribe").isEnabledFor(
            logging.DEBUG))
    except (OSError, AngioscribeError) as error:
        refuse(error, source=config or "angioscribe serve")


def _tls_flags(cert: Path | None, key: Path | None, ca: Path | None) -> dict[str, Path] | None:
    """The TLS flags as the config's `tls` mapping (None: not given, the file's keys stay);
    a certificate without its key, or the reverse, is refused by the config's own check."""
    given = {name: path for name, path in (("cert", cert), ("key", key), ("ca", ca)) if path}
    return given or None
