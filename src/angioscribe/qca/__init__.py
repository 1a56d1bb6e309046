"""Quantitative coronary angiography (QCA): a lesion's diameters, % stenosis and length.

    from angioscribe.qca import measure_lesion, mm_per_pixel
    scale = mm_per_pixel(cine.pixel_spacing_mm, cine.sid_mm, cine.sod_mm)
    result = measure_lesion(frame, vessel_mask, lesion_mask, scale)
    result.stenosis_percent, result.grade, result.mld_mm

Modules: `centreline` (the vessel's path through the lesion, on the mask's skeleton), `edges`
(diameters from sub-pixel grey-level edges across it), `lesion` (MLD, interpolated reference,
% stenosis, length, grade, total occlusion). See docs/qca.md.
"""

from angioscribe.qca.centreline import NoVesselError
from angioscribe.qca.lesion import (
    DiameterProfile,
    LesionMeasurement,
    grade,
    measure_lesion,
    mm_per_pixel,
)

__all__ = [
    "DiameterProfile",
    "LesionMeasurement",
    "NoVesselError",
    "grade",
    "measure_lesion",
    "mm_per_pixel",
]
