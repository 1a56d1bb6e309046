"""The service under faults, through its command line and the DICOM network only (the
scenarios are in tests/service_scenarios.py; bench/bench_service_load.py runs them at full size).

- Kill and restart: small studies from two concurrent senders; `angioscribe serve` gets SIGKILL
  mid-way, when an SR has reached the destination but its status has not reached the service,
  and is started again on the same data folder. Every study's SR, KOS and PDF reach the
  destination (nothing lost) and no SOP instance reaches it twice (nothing repeated: the
  restarted service asks the destination, by C-FIND, which results it holds).
- Network fuzz: mutated real XA instances (tests/dicom_mutations.py) sent to the service while
  a good study is sent beside them: every instance the sender can frame gets a DIMSE status or
  a refused presentation context, the service stays up, and the good study comes back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from service_scenarios import fuzz_stream, kill_and_restart, write_mutations, write_sim_studies

STUDIES = range(100, 110)  # seeds of one-view studies
SENDERS = 2
KILL_AFTER = 3  # studies with their SR at the destination when the SIGKILL comes
FUZZ_INSTANCES = 60  # bench/bench_service_load.py sends 500

# Each run loads the models in a worker process (twice with the restart) and analyses the
# studies: one to a few minutes on a shared 2-core machine.
pytestmark = pytest.mark.slow


def test_sigkill_and_restart_lose_nothing_and_send_nothing_twice(tmp_path: Path) -> None:
    studies = write_sim_studies(tmp_path / "sim", STUDIES)
    outcome = kill_and_restart(studies, SENDERS, KILL_AFTER, tmp_path)
    assert outcome.statuses == {0x0000: sum(len(files) for files in studies.values())}
    assert KILL_AFTER <= outcome.reports_at_kill < len(studies), "the kill was not mid-way"
    assert outcome.lost == [], outcome.log_tail
    assert outcome.repeated == {}, outcome.log_tail
    assert set(outcome.reports_per_study.values()) == {1}
    assert outcome.exit_code == 0, outcome.log_tail


def test_mutated_instances_each_get_an_answer_and_a_good_study_still_comes_back(
        shared_data: Path, tmp_path: Path) -> None:
    mutated = write_mutations(tmp_path / "fuzz", shared_data / "dicom", FUZZ_INSTANCES)
    good = write_sim_studies(tmp_path / "sim", STUDIES[:1])
    outcome = fuzz_stream(mutated, good, tmp_path)
    assert outcome.alive_after_stream, outcome.log_tail
    assert outcome.unanswered == [], outcome.log_tail
    answered = sum(count for status, count in outcome.statuses.items() if status is not None)
    assert answered >= FUZZ_INSTANCES // 2, outcome.problems
    assert outcome.good_statuses == {0x0000: sum(len(files) for files in good.values())}
    assert outcome.good_back == outcome.good_studies, outcome.log_tail
    assert outcome.exit_code == 0, outcome.log_tail
