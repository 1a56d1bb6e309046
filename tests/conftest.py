"""Shared fixtures: the real data beside the repository (../shared/data), as CI lays it out."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder; tests that need it skip (with the path) only when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run a test taking `shared_dicom` once per DICOM file under shared/data/dicom."""
    if "shared_dicom" in metafunc.fixturenames:
        folder = SHARED_DATA / "dicom"
        files = sorted(folder.rglob("*.dcm")) if folder.is_dir() else []
        ids = [str(file.relative_to(folder)) for file in files]
        metafunc.parametrize("shared_dicom", files, ids=ids)
