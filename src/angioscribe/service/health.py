"""The health endpoint: `GET /health` answers whether the service can take and process studies.

For a load balancer, systemd watchdog script or monitoring system: 200 with a JSON body when the
DICOM listener and every worker are up, 503 with the same body when one is down, so a probe
needs only the status code and a person sees why. Standard library only (one small thread);
it serves nothing else and reads nothing from the request.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

HealthReport = Callable[[], dict[str, Any]]


def start_health(host: str, port: int, report: HealthReport) -> ThreadingHTTPServer:
    """Serve `report()` at http://host:port/health in a daemon thread (port 0: any free port;
    `server_address` says which). The report's `status` "ok" answers 200, anything else 503."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/health":
                self._answer(404, {"error": "not found; the health endpoint is /health"})
                return
            try:
                body = report()
            except Exception:
                log.exception("health report failed")
                body = {"status": "error"}
            self._answer(200 if body.get("status") == "ok" else 503, body)

        def _answer(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Probes every few seconds are not news: no access log."""

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
