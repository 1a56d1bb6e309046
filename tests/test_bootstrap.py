"""Bootstrap CIs: coverage of a known mean, determinism, patient-level resampling."""

from __future__ import annotations

import numpy as np
import pytest

from angioscribe.evaluate.bootstrap import bootstrap_ci


def test_interval_contains_the_estimate_and_narrows_with_more_data():
    rng = np.random.default_rng(1)
    small = bootstrap_ci(rng.normal(5, 1, 20), seed=3)
    large = bootstrap_ci(rng.normal(5, 1, 2000), seed=3)
    assert small.low <= small.estimate <= small.high
    assert large.high - large.low < small.high - small.low
    assert large.low < 5 < large.high


def test_same_seed_same_interval():
    values = np.arange(30) % 7
    assert bootstrap_ci(values, seed=11) == bootstrap_ci(values, seed=11)
    assert bootstrap_ci(values, seed=11) != bootstrap_ci(values, seed=12)


def test_aligned_arrays_are_resampled_together():
    truth = np.array([0, 1, 1, 0, 1, 0, 1, 1])
    interval = bootstrap_ci((truth, truth.copy()), lambda t, p: float((t == p).mean()), n=200)
    assert (interval.estimate, interval.low, interval.high) == (1.0, 1.0, 1.0)


def test_groups_resample_whole_patients():
    """Two patients with four identical cases each: case resampling would see 8 independent
    cases; patient resampling sees two units, so its interval is wider."""
    values = np.array([1.0] * 4 + [0.0] * 4)
    patients = ["a"] * 4 + ["b"] * 4
    by_case = bootstrap_ci(values, n=500, seed=0)
    by_patient = bootstrap_ci(values, n=500, seed=0, groups=patients)
    assert by_patient.high - by_patient.low > by_case.high - by_case.low
    assert set(np.round([by_patient.low, by_patient.high], 6)) <= {0.0, 0.5, 1.0}


def test_undefined_replicates_are_skipped():
    values = np.array([0, 0, 0, 1])
    interval = bootstrap_ci(values, lambda v: np.nan if v.sum() == 0 else 1.0, n=200)
    assert interval.low == interval.high == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": []}, "at least one"),
        ({"values": [1, 2], "groups": ["a"]}, "groups has 1 labels"),
        ({"values": ([1, 2], [1])}, "differ in length"),
        ({"values": [1, 2], "level": 1.5}, "level"),
    ],
)
def test_bad_inputs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_ci(**kwargs)
