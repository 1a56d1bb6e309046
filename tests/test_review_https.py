"""`angioscribe review serve` over HTTPS, started as an operator would: the page answers only
TLS, its session cookie is Secure, and a certificate it cannot use is refused before it starts."""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from angioscribe.review.store import ReviewStore
from angioscribe.review.studies import open_target
from orthanc import free_port
from review_data import PASSWORDS, add_readers, results_folder
from serve_process import ANGIOSCRIBE

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="the openssl command makes the test certificate")


def self_signed(folder: Path) -> tuple[Path, Path]:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
                   check=True, capture_output=True)
    return folder / "cert.pem", folder / "key.pem"


def wait_for(port: int, process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"review serve did not listen on {port}")


def test_https_page_logs_in_with_a_secure_cookie_and_refuses_plain_http(tmp_path):
    folder = results_folder(tmp_path)
    add_readers(ReviewStore(open_target(str(folder)).store_url))
    cert, key = self_signed(tmp_path)
    port = free_port()
    process = subprocess.Popen([str(ANGIOSCRIBE), "review", "serve", str(folder), "--port",
                                str(port), "--tls-cert", str(cert), "--tls-key", str(key)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(port, process)
        trusting = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=trusting) as client:
            page = client.get("/login")
            assert page.status_code == 200
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            logged_in = client.post("/login", data={"username": "alice",
                                                    "password": PASSWORDS["alice"],
                                                    "csrf_token": token})
            assert logged_in.status_code == 303
            cookie = logged_in.headers["set-cookie"].lower()
            assert "secure" in cookie and "httponly" in cookie
            assert client.get("/").status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
        with pytest.raises(httpx.ConnectError):  # a client that does not trust it stops
            httpx.get(f"https://127.0.0.1:{port}/login", timeout=5)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("case", ["key missing", "no such file", "not a certificate"])
def test_review_serve_refuses_unusable_tls_files_before_it_starts(tmp_path, case):
    from typer.testing import CliRunner

    from angioscribe.cli import app

    folder = results_folder(tmp_path)
    cert, key = self_signed(tmp_path)
    if case == "not a certificate":
        cert.write_text("not a certificate\n", encoding="utf-8")
    options = {"key missing": ["--tls-cert", str(cert)],
               "no such file": ["--tls-cert", str(cert), "--tls-key", str(tmp_path / "nokey")],
               "not a certificate": ["--tls-cert", str(cert), "--tls-key", str(key)]}[case]
    result = CliRunner().invoke(app, ["review", "serve", str(folder), "--port",
                                      str(free_port()), *options])
    assert result.exit_code == 3
    named = {"key missing": "--tls-cert/--tls-key", "no such file": "nokey",
             "not a certificate": "cert.pem"}[case]
    assert named in result.output
