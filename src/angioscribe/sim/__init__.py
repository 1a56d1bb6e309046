"""Synthetic coronary angiography studies with complete ground truth (a phantom).

    from angioscribe.sim import simulate_study, write_study
    study = simulate_study(seed=7)          # patient, 3D trees, lesions, 6-9 cines, reports
    study.to_study()                        # as an angioscribe.study.Study, in memory
    write_study(study, Path("out"))         # XA DICOM, masks, truth.json, DeepCORO CSV

Modules, in the order a study is made: `patient` (demographics, pre-procedure report),
`anatomy3d` (coronary centrelines with SYNTAX numbers on an ellipsoidal heart), `lesions`
(stenosis, CTO, thrombus, calcification, stents), `scene` (what one injection shows), `motion`
(heart beat, breathing), `contrast` (bolus timing), `projection` (C-arm geometry), `raster` and
`render` (cine frames and per-frame truth), `background` (chest anatomy), `keyframes` (the
better/bad/other rule), `reports` (EN/JA summaries with the guideline's treatment), `study`,
`writers`, `compare` (figure against a real cine). See docs/simulator.md.

It is a phantom for exercising and testing the pipeline end to end: not a substitute for
clinical data or clinical validation.
"""

from angioscribe.sim.study import SimulatedStudy, SimulatedView, simulate_study
from angioscribe.sim.writers import dataset_seeds, write_dataset, write_study

__all__ = [
    "SimulatedStudy",
    "SimulatedView",
    "dataset_seeds",
    "simulate_study",
    "write_dataset",
    "write_study",
]
