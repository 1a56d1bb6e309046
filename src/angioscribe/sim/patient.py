"""The simulated patient: demographics, history, and the pre-procedure clinical report.

CAG-VLM pairs each key frame with the patient's pre-procedure report ("84-year-old male. CAG
performed 2021/2/10." / "84歳男性、2021年2月10日に冠動脈造影(CAG)施行。"). The simulator writes
such a report in both languages from a patient drawn with plausible correlations: an acute
presentation makes thrombus likelier, age and diabetes make calcification likelier.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from angioscribe.anatomy import segment as syntax_segment

Sex = Literal["M", "F"]

# key: (probability, English sentence, Japanese sentence); {months}/{days} ("3 months") and
# {n} (the bare number, for Japanese) give the duration.
SYMPTOMS: dict[str, tuple[float, str, str]] = {
    "stable_angina": (0.35, "Exertional chest pain for {months}.", "{n}か月前からの労作時胸痛。"),
    "unstable_angina": (0.15, "Chest pain at rest for {days} (unstable angina).",
                        "{n}日前からの安静時胸痛（不安定狭心症）。"),
    "nstemi": (0.1, "Non-ST-elevation myocardial infarction with troponin rise.",
               "非ST上昇型心筋梗塞（トロポニン上昇）。"),
    "dyspnoea": (0.1, "Dyspnoea on exertion for {months}.", "{n}か月前からの労作時息切れ。"),
    "stress_test": (0.12, "Ischaemia on stress myocardial perfusion imaging.",
                    "負荷心筋シンチグラフィで虚血所見。"),
    "coronary_ct": (0.1, "Coronary CT angiography suggested stenosis.",
                    "冠動脈CTで狭窄が疑われた。"),
    "preoperative": (0.08, "Coronary evaluation before non-cardiac surgery.",
                     "非心臓手術前の冠動脈評価。"),
}
ACUTE_SYMPTOMS = frozenset({"unstable_angina", "nstemi"})

# key: (probability, English, Japanese)
RISK_FACTORS: dict[str, tuple[float, str, str]] = {
    "hypertension": (0.65, "hypertension", "高血圧"),
    "dyslipidaemia": (0.55, "dyslipidaemia", "脂質異常症"),
    "diabetes": (0.35, "diabetes mellitus", "糖尿病"),
    "smoking": (0.3, "smoking", "喫煙"),
    "ckd": (0.15, "chronic kidney disease", "慢性腎臓病"),
    "family_history": (0.12, "family history of coronary artery disease", "冠動脈疾患の家族歴"),
}

PRIOR_PCI_SEGMENTS = ("6", "7", "11", "13", "1", "2", "3")
PRIOR_PCI_PROBABILITY = 0.15


@dataclass(frozen=True)
class PriorPci:
    segment: str
    year: int


@dataclass(frozen=True)
class Patient:
    patient_id: str
    age: int
    sex: Sex
    weight_kg: float
    height_cm: float
    symptom: str
    symptom_duration: int
    risk_factors: tuple[str, ...]
    prior_pci: PriorPci | None
    study_date: dt.date

    @property
    def acute(self) -> bool:
        """An acute coronary syndrome: thrombus is far more likely."""
        return self.symptom in ACUTE_SYMPTOMS

    @property
    def calcium_risk(self) -> float:
        """0..1: older age, diabetes and kidney disease calcify coronary plaque."""
        risk = (self.age - 45) / 45 + 0.2 * ("diabetes" in self.risk_factors) + 0.15 * (
            "ckd" in self.risk_factors)
        return float(np.clip(risk, 0.0, 1.0))

    @property
    def birth_date(self) -> dt.date:
        return self.study_date.replace(year=self.study_date.year - self.age, month=1, day=1)

    def to_dict(self) -> dict:
        record = asdict(self)
        record["study_date"] = self.study_date.isoformat()
        record["acute"] = self.acute
        return record


def sample_patient(rng: np.random.Generator, patient_id: str) -> Patient:
    sex: Sex = "M" if rng.random() < 0.7 else "F"
    age = int(np.clip(rng.normal(69, 10), 35, 92))
    symptom = list(SYMPTOMS)[rng.choice(len(SYMPTOMS), p=[v[0] for v in SYMPTOMS.values()])]
    risks = tuple(name for name, (p, _, _) in RISK_FACTORS.items() if rng.random() < p)
    study_date = dt.date(2018, 1, 1) + dt.timedelta(days=int(rng.integers(0, 8 * 365)))
    prior = None
    if rng.random() < PRIOR_PCI_PROBABILITY:
        prior = PriorPci(str(rng.choice(PRIOR_PCI_SEGMENTS)),
                         int(study_date.year - rng.integers(1, 10)))
    height = rng.normal(170 if sex == "M" else 157, 7)
    return Patient(
        patient_id=patient_id,
        age=age,
        sex=sex,
        weight_kg=round(float(rng.normal(24, 3) * (height / 100) ** 2), 1),
        height_cm=round(float(height), 1),
        symptom=symptom,
        symptom_duration=int(rng.integers(1, 13)),
        risk_factors=risks,
        prior_pci=prior,
        study_date=study_date,
    )


def clinical_report(patient: Patient, language: Literal["en", "ja"]) -> str:
    """The pre-procedure report: age, sex, indication, risk factors, prior PCI, CAG date."""
    _, symptom_en, symptom_ja = SYMPTOMS[patient.symptom]
    date = patient.study_date
    if language == "en":
        sex = "male" if patient.sex == "M" else "female"
        n = patient.symptom_duration
        plural = "" if n == 1 else "s"
        parts = [f"{patient.age}-year-old {sex}.",
                 symptom_en.format(months=f"{n} month{plural}", days=f"{n} day{plural}")]
        if patient.risk_factors:
            names = ", ".join(RISK_FACTORS[r][1] for r in patient.risk_factors)
            parts.append(f"Risk factors: {names}.")
        if patient.prior_pci:
            seg = syntax_segment(patient.prior_pci.segment)
            parts.append(f"Prior PCI to {seg.vessel} #{seg.number} in {patient.prior_pci.year}.")
        parts.append(f"CAG performed {date.year}/{date.month}/{date.day}.")
        return " ".join(parts)
    sex = "男性" if patient.sex == "M" else "女性"
    parts = [f"{patient.age}歳{sex}。", symptom_ja.format(n=patient.symptom_duration)]
    if patient.risk_factors:
        parts.append("冠危険因子：" + "、".join(RISK_FACTORS[r][2] for r in patient.risk_factors)
                     + "。")
    if patient.prior_pci:
        seg = syntax_segment(patient.prior_pci.segment)
        parts.append(f"{patient.prior_pci.year}年に{seg.vessel} #{seg.number}にPCI施行。")
    parts.append(f"{date.year}年{date.month}月{date.day}日に冠動脈造影(CAG)施行。")
    return "".join(parts)
