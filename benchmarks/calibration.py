"""Plans made with the defaults and with rates calibrated on a journal, lived in the world the journal came from.

    .venv/bin/python benchmarks/calibration.py --graines 0 1 2

On the example instance, the world's acceptance rates differ from the defaults (WORLD below). For each seed:
two years of journal are lived by the plan made with the defaults (calibration/world.py), `calibrer`
estimates the rates, a plan is made with them; the realised lettings of the three plans (defaults, calibrated,
knowing the world) are simulated in the world (plan/evaluation.py, `--tirages` draws, the same for all).
The table goes between markers in benchmarks/resultats.md (models/rpls.md §5).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's flux_opt

from run import replace_block  # noqa: E402  (benchmarks/run.py, beside this script)

BEGIN, END = "<!-- debut calibration -->", "<!-- fin calibration -->"
WORLD = {("q1", "PLS"): 0.55, ("q1", "PLUS"): 0.5, ("q234", "PLAI"): 0.3, ("q1", "autre"): 0.5, ("q234", "PLS"): 0.85}


def main() -> None:
    from flux_opt.calibration.check import check_calibration
    from flux_opt.pipeline import load

    parser = argparse.ArgumentParser(description="Plans calibrés sur le journal face aux défauts, dans l'année vécue.")
    parser.add_argument("--graines", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--annees", type=int, default=2)
    parser.add_argument("--tirages", type=int, default=100)
    parser.add_argument("--instance", type=Path, default=ROOT / "instances" / "exemple")
    parser.add_argument("--sortie", type=Path, default=ROOT / "benchmarks" / "resultats.md")
    args = parser.parse_args()
    instance = load(args.instance)
    truth = {**instance.acceptance(), **WORLD}
    rows = []
    for graine in args.graines:
        start = time.perf_counter()
        check = check_calibration(instance, WORLD, graine=graine, years=args.annees, tirages=args.tirages)
        acc = check.calibration.rows("acceptation")
        inside = sum(r.borne_basse <= truth[tuple(r.portee.split(" "))] <= r.borne_haute for r in acc.itertuples())
        rows.append((graine, check.lettings_defaults, check.lettings_calibrated, check.lettings_world, inside, len(acc),
                     int(acc["effectif"].min()), time.perf_counter() - start))
        print(rows[-1], flush=True)
    lines = [BEGIN, "## Calibration sur le journal (`flux-opt calibrer`)", "",
             f"`python benchmarks/calibration.py` : instance {args.instance.name}, taux d'acceptation du monde différents des "
             f"défauts ({', '.join(f'{q} {f} {100 * a:.0f} %' for (q, f), a in WORLD.items())}), {args.annees} ans de journal "
             f"vécus par le plan des défauts, {args.tirages} années simulées par plan (charge "
             f"{os.getloadavg()[0]:.1f}).", "",
             "| graine | attributions, plan des défauts | plan calibré | plan qui connaît le monde | taux du monde dans "
             "l'intervalle | plus petit effectif | s |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for g, d, c, w, inside, n, small, s in rows:
        lines.append(f"| {g} | {d:.1f} | {c:.1f} | {w:.1f} | {inside} / {n} | {small} | {s:.0f} |".replace(".", ","))
    lines.append(END)
    block = "\n".join(lines)
    print(block)
    replace_block(args.sortie, block, BEGIN, END)


if __name__ == "__main__":
    main()
