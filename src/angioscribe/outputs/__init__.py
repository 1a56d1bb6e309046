"""A study's results as objects other systems take: DICOM SR, key object selection and
Encapsulated PDF for the PACS, a report PDF for people, a FHIR R4 Bundle (docs/dicom-outputs.md).
"""

from angioscribe.outputs.study_objects import StudyObjects, write_study_objects

__all__ = ["StudyObjects", "write_study_objects"]
