"""C-arm geometry: where a point in the patient lands on the detector for given positioner angles.

Coordinates are DICOM patient coordinates (LPS, millimetres): +x to the patient's left, +y
posterior, +z superior, origin at the C-arm isocentre. Angles follow DICOM and
`angioscribe.anatomy.view_from_angles`: primary < 0 is RAO (detector to the patient's right),
> 0 LAO; secondary < 0 caudal (detector toward the feet), > 0 cranial. At 0/0 (AP) the source
is under the table and the image is displayed as seen from the detector, so the patient's left
is on the image right and the head at the top, as cardiologists look at a cine.

Projection is a true cone beam: a point at depth `p . d` in front of the isocentre is magnified
by SID / (SOD + p . d), so objects nearer the source look larger, as on a real system.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

DETECTOR_PIXELS = 512
SUPERIOR = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class CArm:
    """One positioner setting and the detector that records it.

    `pan_mm` shifts the image in the detector plane (millimetres at the detector, +column,
    +row), standing in for the table panning an operator does to centre the vessels.
    """

    primary_deg: float
    secondary_deg: float
    sid_mm: float = 1000.0
    sod_mm: float = 720.0
    pixel_spacing_mm: float = 0.308
    pixels: int = DETECTOR_PIXELS
    pan_mm: tuple[float, float] = (0.0, 0.0)

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Beam direction (source to detector), image-right and image-down unit vectors."""
        primary, secondary = np.radians(self.primary_deg), np.radians(self.secondary_deg)
        horizontal = np.array([np.sin(primary), -np.cos(primary), 0.0])
        beam = np.cos(secondary) * horizontal + np.sin(secondary) * SUPERIOR
        up = -np.sin(secondary) * horizontal + np.cos(secondary) * SUPERIOR
        right = np.cross(-beam, up)
        return beam, right, -up

    @property
    def magnification(self) -> float:
        """Magnification of an object at the isocentre (DICOM's estimated factor)."""
        return self.sid_mm / self.sod_mm

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Columns, rows (pixel units, 0 at the first pixel centre) and magnification per point.

        `points` is (..., 3); outputs have the leading shape. The magnification is returned
        because vessel widths scale with it.
        """
        beam, right, down = self.axes()
        depth = self.sod_mm + points @ beam
        scale = self.sid_mm / depth
        centre = (self.pixels - 1) / 2.0
        cols = centre + (points @ right * scale + self.pan_mm[0]) / self.pixel_spacing_mm
        rows = centre + (points @ down * scale + self.pan_mm[1]) / self.pixel_spacing_mm
        return cols, rows, scale

    def centred_on(self, points: np.ndarray) -> CArm:
        """The same C-arm panned so the bounding box of `points` sits in the image centre."""
        cols, rows, _ = self.project(points)
        centre = (self.pixels - 1) / 2.0
        shift_cols = centre - (cols.min() + cols.max()) / 2.0
        shift_rows = centre - (rows.min() + rows.max()) / 2.0
        pan = (
            self.pan_mm[0] + shift_cols * self.pixel_spacing_mm,
            self.pan_mm[1] + shift_rows * self.pixel_spacing_mm,
        )
        return replace(self, pan_mm=pan)

    def extent_px(self, points: np.ndarray) -> float:
        """The larger side, in pixels, of the bounding box of the projected points."""
        cols, rows, _ = self.project(points)
        return float(max(np.ptp(cols), np.ptp(rows)))
