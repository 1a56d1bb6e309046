"""`angioscribe serve` under load and faults, at the sizes issue 24 names.

Targets (issue 24):
- 100 studies from 4 concurrent senders with a SIGKILL mid-way and a restart on the same data
  folder: 0 lost (every study's SR reaches the destination), 0 duplicated (no SOP instance, and
  no study's SR, reaches it twice).
- 500 mutated DICOM instances (tests/dicom_mutations.py, from the real XA files) sent over the
  network beside good studies: the service stays up, answers each instance it can be sent
  with a status, and the good studies still come back.

The studies are one-view simulated studies (RLE), so the run measures the service (receiving,
queue, workers, sending, recovery) more than the models; the scenarios are the ones the test
suite runs small (tests/service_scenarios.py). The machine is shared, so the load average is
recorded beside the numbers.

    python bench/bench_service_load.py [--studies 100] [--senders 4] [--mutations 500]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from record import record

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the service harness
from service_scenarios import (  # noqa: E402
    FuzzOutcome,
    KillRestartOutcome,
    fuzz_stream,
    kill_and_restart,
    write_mutations,
    write_sim_studies,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIRST_SEED = 1000
GOOD_STUDIES = 4  # sent beside the mutated instances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=100)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--mutations", type=int, default=500)
    parser.add_argument("--data", type=Path, default=SHARED_DATA,
                        help="The real-data folder (its dicom/ seeds the mutations).")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-service-load-") as scratch:
        folder = Path(scratch)
        studies = write_sim_studies(folder / "sim", range(FIRST_SEED, FIRST_SEED + args.studies))
        kill = kill_and_restart(studies, args.senders, args.studies // 2, folder / "kill")
        print(kill, flush=True)
        mutated = write_mutations(folder / "mutations", args.data / "dicom", args.mutations)
        good = write_sim_studies(folder / "good", range(FIRST_SEED + args.studies,
                                                        FIRST_SEED + args.studies + GOOD_STUDIES))
        fuzz = fuzz_stream(mutated, good, folder / "fuzz", workers=2)
        print(fuzz, flush=True)
    metrics = {
        **kill_metrics(kill, args.senders),
        **fuzz_metrics(fuzz),
        "load_average_1_5_15_before": [round(value, 2) for value in load_before],
        "load_average_1_5_15_after": [round(value, 2) for value in os.getloadavg()],
    }
    path = record("service_load", metrics,
                  notes="kill: one-view simulated studies, SIGKILL when half have their SR, "
                        "restart on the same data folder, 2 workers, stable 1 s; fuzz: mutated "
                        "real XA instances on one association stream and good studies on "
                        "another, 2 workers. A shared 2-core machine: see the load average.")
    print(path.read_text())


def kill_metrics(outcome: KillRestartOutcome, senders: int) -> dict[str, Any]:
    return {
        "kill_studies": outcome.studies,
        "kill_senders": senders,
        "kill_instances_acknowledged": outcome.statuses.get(0x0000, 0),
        "kill_instances_not_acknowledged": sum(count for status, count in
                                               outcome.statuses.items() if status != 0x0000),
        "kill_reports_at_kill": outcome.reports_at_kill,
        "kill_lost": len(outcome.lost),
        "kill_duplicated_instances": len(outcome.repeated),
        "kill_studies_with_two_reports": sum(count > 1 for count in
                                             outcome.reports_per_study.values()),
        "kill_exit_code": outcome.exit_code,
        "kill_seconds": round(outcome.seconds, 1),
        "kill_studies_per_minute": round(60 * outcome.studies / outcome.seconds, 1),
    }


def fuzz_metrics(outcome: FuzzOutcome) -> dict[str, Any]:
    return {
        "fuzz_instances": outcome.instances,
        "fuzz_statuses": {("none" if status is None else f"0x{status:04X}"): count
                          for status, count in sorted(outcome.statuses.items(),
                                                      key=lambda item: item[0] or -1)},
        "fuzz_no_status_why": dict(outcome.problems),
        "fuzz_unanswered": len(outcome.unanswered),
        "fuzz_service_up_after_stream": outcome.alive_after_stream,
        "fuzz_good_studies": outcome.good_studies,
        "fuzz_good_studies_back": outcome.good_back,
        "fuzz_exit_code": outcome.exit_code,
        "fuzz_seconds": round(outcome.seconds, 1),
    }


if __name__ == "__main__":
    main()
