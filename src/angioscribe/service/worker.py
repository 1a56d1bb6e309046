"""A worker: claims studies from the queue, analyses them and sends the results.

Each worker process loads the models once (`Models.load`) and runs torch and OpenCV on one
thread each (`single_threaded`), so `serve`'s workers share the cores instead of fighting over
them. A study is analysed from `data_dir/incoming/<uid>/` into `data_dir/results/<uid>/`
(rewritten from scratch on each attempt): analysis.json, figures, draft reports, then the DICOM
objects (SR, KOS, PDF) and the FHIR DiagnosticReport (`angioscribe.outputs.write_study_objects`).
The DICOM objects are C-STOREd to each destination that does not have them yet and the FHIR
Bundle is PUT to the FHIR endpoint when one is configured; each file is marked in the queue
right after the destination acknowledged it.

Nothing sent twice, and where that rests on the destination: a worker killed between an
acknowledgement and its mark leaves a file the destination has but the queue does not know of.
An attempt that only sends (an earlier one drafted the files) therefore first asks each
DICOM destination which of the unmarked files it holds, in the same version
(`sender.instances_held`, a C-FIND per file), and marks those without sending them: with a
destination that answers, a kill at any moment and a restart send no file twice. A destination
that cannot be asked (it offers no Query/Retrieve FIND to our AE title) gets the unmarked files
again, under the same SOP Instance UIDs, which it replaces rather than stores twice; so does
the FHIR endpoint, whose Bundle is PUT under an id derived from the study.

Any exception while processing a study fails that attempt (`JobQueue.fail`) and the worker
goes on with the next study. The queue stores the text of angioscribe's own errors (which
name files by their UID paths and say the problem) and only the type and place of any other
exception, whose message could quote a header value.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from threading import Event
from typing import TYPE_CHECKING, Any

from angioscribe.batch import json_safe
from angioscribe.errors import AngioscribeError, InputError
from angioscribe.service.config import Destination, ServiceConfig
from angioscribe.service.jsonlog import exception_fields
from angioscribe.service.queue import Job, JobQueue, State

if TYPE_CHECKING:
    from angioscribe.analyze import Segmenters
    from angioscribe.keyframes.classify import KeyframeClassifier
    from angioscribe.report.draft import Drafter

log = logging.getLogger(__name__)

IDLE_SECONDS = 0.5  # how long an idle worker waits before asking the queue again
RETRY_SECONDS = 30.0  # how long a failed study waits before its next attempt
FHIR_SCHEMES = ("http://", "https://")  # a destination with one of these is a FHIR endpoint
FHIR_TIMEOUT_SECONDS = 30.0


@dataclass
class Models:
    """What analysing a study needs loaded: the key-frame classifier, the two segmenters and
    a drafter per language."""

    classifier: KeyframeClassifier
    segmenters: Segmenters
    drafters: Mapping[str, Drafter]

    @classmethod
    def load(cls, config: ServiceConfig) -> Models:
        from angioscribe.analyze import Segmenters
        from angioscribe.keyframes.classify import KeyframeClassifier
        from angioscribe.report.drafters import DEFAULT_DRAFTER, create_drafter

        drafter = config.drafter or DEFAULT_DRAFTER
        return cls(KeyframeClassifier.load(), Segmenters.load(),
                   {lang: create_drafter(drafter, lang) for lang in config.languages})


class Worker:
    """One worker, named `name` in the queue (the jobs it holds carry the name, so the ones
    it held when it died can be found). `models` are loaded when not given; `write_objects`,
    `send` and `ask` default to `angioscribe.outputs.write_study_objects`,
    `angioscribe.service.sender.send_files` and `instances_held` (tests pass their own)."""

    def __init__(
        self,
        config: ServiceConfig,
        name: str = "worker",
        models: Models | None = None,
        write_objects: Callable[..., Any] | None = None,
        send: Callable[..., None] | None = None,
        ask: Callable[..., set[Path] | None] | None = None,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        single_threaded()
        self.config = config
        self.name = name
        self.queue = JobQueue(config.queue_url)
        self.models = models or Models.load(config)
        self.write_objects = write_objects or _write_study_objects
        self.send = send or _send_files
        self.ask = ask or _instances_held
        self.retry_seconds = retry_seconds

    def run(self, stop: Event) -> None:
        """Process studies until `stop` is set (the current study is finished first). The
        jobs this worker's name held when it last stopped are released first."""
        for study_uid in self.queue.recover(worker=self.name,
                                            max_attempts=self.config.max_attempts):
            log.warning("study released: this worker had stopped while holding it",
                        extra={"study_uid": study_uid, "worker": self.name})
        while not stop.is_set():
            if not self.run_once():
                stop.wait(IDLE_SECONDS)

    def run_once(self) -> bool:
        """Claim one job and process it; False when there was none to claim."""
        job = self.queue.claim(self.name)
        if job is None:
            return False
        try:
            self.process(job)
        except Exception as error:
            log.warning("study attempt failed", exc_info=error, extra={
                "study_uid": job.study_uid, "worker": self.name, "attempt": job.attempts})
            self.queue.fail(job.study_uid, error_text(error), self.config.max_attempts,
                            retry_seconds=self.retry_seconds)
        return True

    def process(self, job: Job) -> None:
        """Analyse the study and write its objects (unless an earlier attempt drafted them
        and only sending was left), then send them where they have not been acknowledged:
        the DICOM objects to each DICOM destination, the FHIR Bundle to the FHIR endpoint."""
        resending = job.state != State.ANALYSING
        if resending:
            outputs, destinations = [Path(path) for path in job.outputs], job.destinations
        else:
            outputs, destinations = self.draft(job.study_uid), self.destinations()
            self.queue.drafted(job.study_uid, outputs, destinations)
        for destination in destinations:
            if destination in job.sent_to:
                continue
            if destination.startswith(FHIR_SCHEMES):
                put_fhir(destination, next(path for path in outputs if path.suffix == ".json"))
            else:
                self.store(job, destination, [path for path in outputs if path.suffix == ".dcm"],
                           resending)
            self.queue.sent(job.study_uid, destination)
            log.info("study sent", extra={"study_uid": job.study_uid,
                                          "destination": destination})

    def store(self, job: Job, destination: str, files: list[Path], resending: bool) -> None:
        """C-STORE the files the destination has not acknowledged yet, one association each,
        each marked as soon as it is acknowledged: a worker killed in the middle of a study's
        objects sends only the rest after its restart. When `resending` (an earlier attempt
        may have sent a file and died before its mark), the files the destination says it
        holds are marked without sending them."""
        acknowledged = job.stored.get(destination, [])
        files = [file for file in files if file.name not in acknowledged]
        target = Destination.parse(destination)
        if resending and files:
            held = self.ask(target, files, self.config.calling_ae_title,
                            tls=self.config.tls) or set()
            for file in (file for file in files if file in held):
                self.queue.stored(job.study_uid, destination, file.name)
                log.info("result already at the destination, not sent again", extra={
                    "study_uid": job.study_uid, "destination": destination, "file": file.name})
            files = [file for file in files if file not in held]
        for file in files:
            self.send(target, [file], self.config.calling_ae_title, tls=self.config.tls)
            self.queue.stored(job.study_uid, destination, file.name)

    def destinations(self) -> list[str]:
        """Where a study's results go, as the queue records them: each DICOM destination as
        "AET@HOST:PORT", and the FHIR endpoint's URL when one is configured."""
        endpoint = [self.config.fhir_endpoint] if self.config.fhir_endpoint else []
        return [str(destination) for destination in self.config.destinations] + endpoint

    def draft(self, study_uid: str) -> list[Path]:
        """The study's analysis and objects in its results folder; the files to send (the
        DICOM objects and the FHIR Bundle). Raises InputError when no instance of the study
        could be read, or when the study started over (a new instance) during the analysis.

        The attempt works in a folder of its own and replaces the results folder only while
        the queue still says it holds the study: a worker whose study started over never
        writes into the folder the next attempt fills."""
        from angioscribe.analyze import analyze_paths, write_analysis

        started = time.monotonic()
        incoming = self.config.incoming_dir / study_uid
        work = self.config.results_dir / f".{study_uid}.{self.name}"
        shutil.rmtree(work, ignore_errors=True)
        studies = analyze_paths([incoming], work, classifier=self.models.classifier,
                                segmenters=self.models.segmenters, drafters=self.models.drafters)
        write_analysis(studies, work)
        study = next((s for s in studies if s.key == study_uid and s.cines), None)
        if study is None:
            count = sum(1 for path in incoming.iterdir() if path.is_file())
            raise InputError(incoming, f"none of the study's {count} instances could be read "
                             "as a cine (details in analysis.json)")
        objects = self.write_objects(json_safe(study.to_dict()), work, work / "objects",
                                     languages=self.config.languages)
        results = self.publish(study_uid, work)
        files = [results / path.relative_to(work) for path in [*objects.dicom(), objects.fhir]]
        if self.config.fhir_dir is not None:
            self.config.fhir_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(files[-1], self.config.fhir_dir / f"{study_uid}.json")
        log.info("study drafted", extra={"study_uid": study_uid, "cines": len(study.cines),
                                         "seconds": round(time.monotonic() - started, 2)})
        return files

    def publish(self, study_uid: str, work: Path) -> Path:
        """Move this attempt's `work` folder to the study's results folder, if the queue still
        says this worker analyses the study; otherwise drop it (the study started over, and its
        next attempt writes the results)."""
        results = self.config.results_dir / study_uid
        job = self.queue.job(study_uid)
        if job is None or job.state != State.ANALYSING or job.worker != self.name:
            shutil.rmtree(work, ignore_errors=True)
            raise InputError(results, "the study started over during its analysis (a new "
                             "instance arrived); its next attempt analyses it")
        replaced = results.with_name(f"{work.name}.replaced")
        shutil.rmtree(replaced, ignore_errors=True)
        if results.exists():
            results.rename(replaced)
        work.rename(results)
        shutil.rmtree(replaced, ignore_errors=True)
        return results


def single_threaded() -> None:
    """torch and OpenCV on one thread each in this process: `serve` runs one worker per core,
    and libraries starting a thread per core in every worker would make them wait on one
    another."""
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def error_text(error: Exception) -> str:
    """What the queue stores of a failed attempt: angioscribe's own message, or only the type
    and place of another exception (its message could quote a header value)."""
    if isinstance(error, AngioscribeError):
        return f"{type(error).__name__}: {error}"
    fields = exception_fields(error)
    return f"{fields['error_type']} at {', '.join(fields['error_at'])}"


def put_fhir(endpoint: str, bundle: Path) -> None:
    """PUT the FHIR Bundle at `endpoint`/Bundle/<its id>. The id is derived from the study,
    so sending it again replaces the Bundle where a POST would store a second one."""
    import urllib.error
    import urllib.request

    url = f"{endpoint.rstrip('/')}/Bundle/{json.loads(bundle.read_bytes())['id']}"
    request = urllib.request.Request(url, data=bundle.read_bytes(), method="PUT",
                                     headers={"Content-Type": "application/fhir+json"})
    try:
        with urllib.request.urlopen(request, timeout=FHIR_TIMEOUT_SECONDS):
            pass
    except (urllib.error.URLError, OSError) as error:  # HTTPError (4xx, 5xx) is a URLError
        raise AngioscribeError(f"sending to {url}: {error}") from error


def _write_study_objects(*args: Any, **kwargs: Any) -> Any:
    from angioscribe.outputs import write_study_objects

    return write_study_objects(*args, **kwargs)


def _send_files(*args: Any, **kwargs: Any) -> None:
    from angioscribe.service.sender import send_files

    send_files(*args, **kwargs)


def _instances_held(*args: Any, **kwargs: Any) -> set[Path] | None:
    from angioscribe.service.sender import instances_held

    return instances_held(*args, **kwargs)
