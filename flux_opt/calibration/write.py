"""The files of `flux-opt calibrer`: acceptation.csv (the instance reads it as is), reservataires_calibres.csv
(id, candidats, delai_jours: to carry into reservataires.csv), estimations.csv (every estimate with its count
and interval) and calibration.html."""

from __future__ import annotations

from pathlib import Path

from flux_opt.calibration.journal import Calibration
from flux_opt.report.calibration import calibration_page

FILES = ("acceptation.csv", "reservataires_calibres.csv", "estimations.csv", "calibration.html")


def write_calibration(calibration: Calibration, folder: str | Path) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    calibration.acceptation.to_csv(folder / "acceptation.csv", index=False)
    calibration.reservataires.to_csv(folder / "reservataires_calibres.csv", index=False)
    calibration.estimates.round(4).to_csv(folder / "estimations.csv", index=False)
    (folder / "calibration.html").write_text(calibration_page(calibration), encoding="utf-8")
    return [folder / f for f in FILES]
