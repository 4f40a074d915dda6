"""The documents a bailleur sends as they are, written with the plan: one annex per réservataire
(`annexes/`, report/annexes.py) and the note for the State's services (`note_etat.html`,
report/note_etat.py)."""

from __future__ import annotations

import pandas as pd

from flux_opt.report.annexes import ANNEXES, AnnexDocument, folder_writer, plan_annexes
from flux_opt.report.note_etat import NOTE_ETAT


def documents_writers(result, instance, targets: pd.DataFrame | None = None,
                      note: AnnexDocument | None = None) -> dict:
    """Writers for `write_plan(..., extra=...)`: rendered now, written atomically with the plan."""
    writers = {ANNEXES: folder_writer(plan_annexes(result, instance, targets))}
    if note is not None:
        page = note.html().encode("utf-8")
        writers[NOTE_ETAT] = lambda p: p.write_bytes(page)
    return writers
