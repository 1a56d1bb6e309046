"""`make demo`: the whole chain on the shipped default models and example data.

Uses the real cines and DICOM files in the shared data folder when it exists; otherwise it
simulates a study first, so the demo runs on any fresh machine.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from angioscribe.analyze import StudyAnalysis, analyze_paths, write_analysis
from angioscribe.findings import percent_text

EXAMPLE_FOLDERS = ("cine", "dicom")


def example_inputs(data: Path, out: Path) -> list[Path]:
    """The shared real examples, or a simulated study written under `out` when they are absent."""
    found = [data / name for name in EXAMPLE_FOLDERS if (data / name).is_dir()]
    if found:
        return found
    from angioscribe.sim.study import simulate_study
    from angioscribe.sim.writers import write_study

    study = simulate_study(seed=0)
    write_study(study, out / "simulated")
    return [out / "simulated" / study.study_id / "dicom"]


def findings_table(study: StudyAnalysis) -> Table:
    """The study's findings per segment: % diameter stenosis and grade (QCA, from the view
    named first), the stenosis model's confidence, and every view that shows the lesion."""
    table = Table(title=f"findings per segment: {study.key}", title_justify="left")
    for column in ("segment", "stenosis %", "grade", "confidence", "views (frame, %)"):
        table.add_column(column)
    for entry in study.study_findings:
        table.add_row(entry["label"], percent_text(entry["stenosis_percent"]),
                      entry["grade"] or "-", f"{entry['confidence']:.2f}",
                      "\n".join(_view(view) for view in entry["views"]))
    return table


def _view(view: dict[str, Any]) -> str:
    return (f"{view['view'] or 'view unknown'} {Path(view['path']).name} #{view['frame']} "
            f"({percent_text(view['stenosis_percent'])})")


def print_study_findings(console: Console, study: StudyAnalysis) -> None:
    """The findings table (or that none were found) and the study's EN and JA drafts."""
    if study.study_findings:
        console.print(findings_table(study))
    elif study.findings:
        console.print("  no lesion found on the frames read")
    for lang, draft in study.drafts.items():
        console.print(f"  [bold]draft ({lang.upper()}, {draft['model']})[/bold]: "
                      f"{escape(draft['text'])}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("demo-output"))
    args = parser.parse_args(argv)
    console = Console()
    inputs = example_inputs(args.data, args.out)
    console.print(f"[bold]angioscribe demo[/bold] on {', '.join(map(str, inputs))}")
    studies = analyze_paths(inputs, args.out)
    for study in studies:
        console.print(f"\n[bold]study[/bold] {study.key}")
        for cine in study.cines:
            best = max(cine.candidates, key=lambda c: c.opacification, default=None)
            console.print(
                f"  {Path(cine.source).name}: {cine.header['frames']} frames, view {cine.view}, "
                f"candidates {[c.index for c in cine.candidates]}, "
                f"most opacified {best.index if best else None}"
            )
            for frame, verdict in cine.out_of_scope.items():
                console.print(f"    frame {frame} [yellow]out of scope[/yellow]: "
                              f"{verdict['reason']}")
        for finding in study.findings:
            lesions = ", ".join(s["label"] for s in finding["stenoses"]) or "none"
            conflict = (f" [yellow](segments show {finding['laterality']}: check the side)"
                        "[/yellow]" if finding["side_conflict"] else "")
            role = "key frame" if finding["key_frame"] else "best frame"
            console.print(
                f"  {role} {finding['side']} {Path(finding['path']).name} #{finding['frame']}: "
                f"segments {finding['segments']}, stenoses: {lesions}{conflict}"
            )
        for error in study.errors:
            console.print(f"  [red]unreadable[/red] {error['path']}: {error['error']}")
        print_study_findings(console, study)
    console.print(f"\nresults: {write_analysis(studies, args.out)} and {args.out / 'figures'}/")


if __name__ == "__main__":
    main()
