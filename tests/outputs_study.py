"""One analysed simulated study for the outputs tests, made once per test session.

Analysing a study (simulate, load the models, run the chain) is the slow part of these tests;
every test_outputs_* module shares the one result. A two-view study (one left, one right
injection) whose seed gives key frames on both sides and several lesions.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

SEED = 2


@functools.cache
def analysed_study() -> tuple[dict[str, Any], Path]:
    """(the study's analysis.json entry, the folder analysis.json is in)."""
    from angioscribe.analyze import analyze_paths, write_analysis
    from angioscribe.sim.study import simulate_study
    from angioscribe.sim.writers import write_study

    root = Path(tempfile.mkdtemp(prefix="angioscribe-outputs-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    write_study(simulate_study(SEED, n_left=1, n_right=1), root / "sim")
    analysis_dir = root / "analysis"
    write_analysis(analyze_paths([root / "sim"], analysis_dir), analysis_dir)
    studies = json.loads((analysis_dir / "analysis.json").read_text(encoding="utf-8"))
    return studies[0], analysis_dir
