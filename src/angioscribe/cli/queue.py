"""`angioscribe queue list|retry|complete`: the service's job queue, for the people running it.

The queue is found the way `angioscribe serve` finds it: `--queue URL`, else the `--config`
file's queue, else the SQLite file in the data folder (`--data`, or the config's). A queue
that does not exist yet is an error, not a new empty one. `retry` and `complete` follow the
error contract per study (exit 0 all done, 1 some failed, 3 none); `list` exits 0, or 3 when
the queue cannot be read.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from angioscribe.batch import attempt
from angioscribe.cli.contract import RecordSink
from angioscribe.cli.output import JsonOption, print_records
from angioscribe.cli.refusal import refuse
from angioscribe.errors import InputError

if TYPE_CHECKING:
    from angioscribe.service.queue import Job, JobQueue

app = typer.Typer(
    no_args_is_help=True,
    help="The service's job queue: list the studies, retry failed ones, complete one now.",
)

QueueOption = Annotated[str | None, typer.Option(
    "--queue", help="Queue URL: sqlite:///FILE or postgresql+psycopg://USER@HOST/DB.")]
DataOption = Annotated[Path | None, typer.Option(
    "--data", help="The service's data folder (its queue is DATA/queue.db).")]
ConfigOption = Annotated[Path | None, typer.Option(
    "--config", help="The service's YAML config file; its queue is used.")]
StudiesArgument = Annotated[list[str], typer.Argument(help="StudyInstanceUIDs.")]
LIST_COLUMNS = ("study_uid", "state", "instances", "attempts", "updated", "sent_to",
                "last_error")


@app.command("list")
def list_jobs(
    state: Annotated[str | None, typer.Option(
        "--state", help="Only the studies in this state: receiving, received, analysing, "
                        "drafted, sent or failed.")] = None,
    queue_url: QueueOption = None,
    data: DataOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the studies in the queue, oldest first.

    Per study: its state, instances received, attempts, when it last changed (UTC), the
    destinations that acknowledged its results and its last error."""
    from angioscribe.service.queue import State

    try:
        wanted = State(state) if state is not None else None
    except ValueError:
        raise typer.BadParameter(f"{state!r} is not a state", param_hint="--state") from None
    queue, source = open_queue(queue_url, data, config, as_json)
    try:
        jobs = queue.jobs(wanted)
    except Exception as error:  # a database that is down or not a queue: say which
        refuse(error, as_json, source=source)
    print_records([job_record(job, full=as_json) for job in jobs], as_json, LIST_COLUMNS)


@app.command("retry")
def retry(studies: StudiesArgument, queue_url: QueueOption = None, data: DataOption = None,
          config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Queue failed studies again.

    Their attempts start from zero; destinations that acknowledged a study before do not get
    it again."""
    change_each(studies, "retry", queue_url, data, config, as_json)


@app.command("complete")
def complete(studies: StudiesArgument, queue_url: QueueOption = None, data: DataOption = None,
             config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Analyse studies still receiving now, without waiting for the stable wait."""
    change_each(studies, "complete", queue_url, data, config, as_json)


def change_each(studies: list[str], change: str, queue_url: str | None, data: Path | None,
                config: Path | None, as_json: bool) -> None:
    """`queue.<change>(study)` for each study, one record each (its new state, or why not)."""
    queue, _ = open_queue(queue_url, data, config, as_json)
    with RecordSink(as_json, ("study_uid", "state")) as sink:
        for study_uid in studies:
            record, error = attempt(study_uid, partial(_changed, queue, change, study_uid))
            sink.emit(error or record)


def _changed(queue: JobQueue, change: str, study_uid: str) -> dict[str, Any]:
    getattr(queue, change)(study_uid)
    return {"study_uid": study_uid, "state": str(queue.job(study_uid).state)}


def open_queue(queue_url: str | None, data: Path | None, config: Path | None,
               as_json: bool) -> tuple[JobQueue, str]:
    """The service's queue and its URL as shown to people (password hidden); refuses (exit
    3) when the config is wrong, an SQLite queue file does not exist or the database cannot
    be reached."""
    from sqlalchemy.engine import make_url

    from angioscribe.service.config import load_config
    from angioscribe.service.queue import JobQueue

    try:
        url = make_url(load_config(config, queue_url=queue_url, data_dir=data).queue_url)
    except Exception as error:  # a config that is wrong, a URL that is not one
        refuse(error, as_json, source=config or "--queue")
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        refuse(InputError(shown, "no queue there: the service has not run with this data "
                          "folder (name it with --data, --config or --queue)"), as_json)
    try:
        return JobQueue(url.render_as_string(hide_password=False)), shown
    except Exception as error:  # a database that cannot be reached
        refuse(error, as_json, source=shown)


def job_record(job: Job, full: bool) -> dict[str, Any]:
    """A job for `list`: every field with `full` (--json), else the table's cells."""
    if full:
        return {key: value.isoformat() if isinstance(value, datetime) else value
                for key, value in {**vars(job), "state": str(job.state)}.items()}
    return {"study_uid": job.study_uid, "state": str(job.state), "instances": job.instances,
            "attempts": job.attempts, "updated": f"{job.updated_at:%Y-%m-%d %H:%M:%S}",
            "sent_to": ", ".join(job.sent_to), "last_error": job.error}
