"""Orthanc (Debian's `Orthanc` binary) as the PACS of the service tests.

It runs with the documented example of deploy/orthanc (orthanc.json and the Lua route to
angioscribe), so the tests exercise what the operations manual tells a team to install; only
what a test machine needs is changed: free loopback ports, storage in a temp folder, any caller
may store, a short stable age, and the angioscribe modality pointed at the service under test.
What Orthanc holds is read back through its REST API (no authentication, loopback only).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy" / "orthanc"
ORTHANC_BINARY = "Orthanc"
ROUTE_SCRIPT = "route-to-angioscribe.lua"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    """A TCP port nobody listens on at this moment (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def orthanc_available() -> bool:
    return shutil.which(ORTHANC_BINARY) is not None


@dataclass(frozen=True)
class StoredInstance:
    """One instance as Orthanc holds it: what a test checks came back, and from whom."""

    orthanc_id: str
    sop_instance_uid: str
    sop_class_uid: str
    modality: str
    remote_aet: str


@dataclass
class Orthanc:
    """A running Orthanc: its ports and AE title, and its REST API."""

    process: subprocess.Popen[bytes]
    folder: Path
    ae_title: str
    dicom_port: int
    http_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as answer:
            return json.load(answer)

    def get_bytes(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=30) as answer:
            return answer.read()

    def post(self, path: str, body: str) -> Any:
        request = urllib.request.Request(self.url + path, data=body.encode(), method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    def study_id(self, study_uid: str) -> str | None:
        """Orthanc's identifier of the study with this StudyInstanceUID, None when absent."""
        found = self.post("/tools/lookup", study_uid)
        return next((entry["ID"] for entry in found if entry["Type"] == "Study"), None)

    def study_instances(self, study_uid: str) -> list[StoredInstance]:
        """Every instance of the study, with its SOP class, series modality and sender."""
        study = self.study_id(study_uid)
        if study is None:
            return []
        instances = []
        for series in self.get(f"/studies/{study}/series"):
            modality = series["MainDicomTags"].get("Modality", "")
            for instance in series["Instances"]:
                metadata = self.get(f"/instances/{instance}/metadata?expand")
                tags = self.get(f"/instances/{instance}")["MainDicomTags"]
                instances.append(StoredInstance(
                    orthanc_id=instance, sop_instance_uid=tags["SOPInstanceUID"],
                    sop_class_uid=metadata.get("SopClassUid", ""), modality=modality,
                    remote_aet=metadata.get("RemoteAET", "")))
        return instances

    def wait_for_instances(self, study_uid: str, done: Callable[[list[StoredInstance]], bool],
                           timeout_s: float, poll_s: float = 0.5) -> list[StoredInstance]:
        """Poll the study until `done(instances)`; returns the last instances seen either way,
        so a test that times out shows what did arrive."""
        deadline = time.monotonic() + timeout_s
        instances = self.study_instances(study_uid)
        while not done(instances) and time.monotonic() < deadline:
            time.sleep(poll_s)
            instances = self.study_instances(study_uid)
        return instances

    def log(self) -> str:
        path = self.folder / "orthanc.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def orthanc_config(folder: Path, dicom_port: int, http_port: int, angioscribe_aet: str,
                angioscribe_port: int, stable_age_s: int) -> dict[str, Any]:
    """deploy/orthanc/orthanc.json with a test machine's ports, folders and modality."""
    config = json.loads((DEPLOY / "orthanc.json").read_text())
    config.update({
        "Name": "angioscribe-test",
        "StorageDirectory": str(folder / "db"),
        "IndexDirectory": str(folder / "db"),
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomAlwaysAllowStore": True,
        "DicomModalities": {"angioscribe": [angioscribe_aet, "127.0.0.1", angioscribe_port]},
        "StableAge": stable_age_s,
        "SaveJobs": False,
        "Plugins": [],
        "LuaScripts": [str(DEPLOY / ROUTE_SCRIPT)],
    })
    return config


@contextmanager
def running_orthanc(folder: Path, angioscribe_aet: str, angioscribe_port: int,
                    stable_age_s: int = 1) -> Iterator[Orthanc]:
    """Start Orthanc in `folder` routing stable studies to angioscribe; stop it at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    dicom_port, http_port = free_port(), free_port()
    config = orthanc_config(folder, dicom_port, http_port, angioscribe_aet, angioscribe_port,
                         stable_age_s)
    config_path = folder / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=2))
    process = subprocess.Popen(
        [ORTHANC_BINARY, f"--logfile={folder / 'orthanc.log'}", str(config_path)],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    orthanc = Orthanc(process, folder, config["DicomAet"], dicom_port, http_port)
    try:
        _wait_until_answering(orthanc)
        yield orthanc
    finally:
        orthanc.stop()


def _wait_until_answering(orthanc: Orthanc) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if orthanc.process.poll() is not None:
            raise RuntimeError(f"Orthanc exited at start ({orthanc.process.returncode}):\n"
                               + orthanc.log()[-2000:])
        try:
            orthanc.get("/system")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise RuntimeError(f"Orthanc did not answer GET /system in {START_TIMEOUT_S:.0f} s:\n"
                       + orthanc.log()[-2000:])
