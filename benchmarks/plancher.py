"""The floor of a certified plan on a set of instances: what any solve within the accepted gap of a
proven bound must spend before its first integer decision, measured on every instance.

For each instance, in CPU seconds: reading and validating the files, the assiette and targets, the
model's construction, and the LP relaxation of that model (the cheapest bound: HiGHS's branch-and-cut
solves it at its root too, and the gap of every plan is measured against it). No integer is
rounded, no plan is written: the wall time of this run, with the same processes as `flux-opt lot`,
is a lower bound of `lot --sans-analyse` on the same machine for this formulation.

    .venv/bin/python benchmarks/plancher.py /tmp/national --processus 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's flux_opt, not an installed one

from flux_opt import pipeline  # noqa: E402
from flux_opt.model import highs_backend  # noqa: E402
from flux_opt.model.build import build_model  # noqa: E402
from flux_opt.model.solve import solver_options  # noqa: E402
from lot import fr  # noqa: E402  (benchmarks/lot.py, beside this script)
from run import replace_block  # noqa: E402

BEGIN, END = "<!-- debut plancher -->", "<!-- fin plancher -->"
PHASES = ["lecture", "assiette", "construction", "relaxation"]


def floor_of(path: str) -> dict:
    """CPU seconds of each phase up to the LP relaxation of one instance (runs in a worker)."""
    ticks = [time.process_time()]
    instance = pipeline.load(path)
    ticks.append(time.process_time())
    flux, targets = pipeline.assiette(instance)
    ticks.append(time.process_time())
    model = build_model(instance, flux, targets)
    ticks.append(time.process_time())
    relaxation = highs_backend._relaxation(model.lp, solver_options(model))
    relaxation.run()
    ticks.append(time.process_time())
    return {"instance": Path(path).name, "colonnes": model.lp.num_cols, "flux": int(flux.total),
            **{phase: ticks[k + 1] - ticks[k] for k, phase in enumerate(PHASES)}}


def instances(folder: Path) -> list[Path]:
    """The instance folders, largest first (bytes on disk), as `lot` schedules them."""
    found = [p for p in folder.iterdir() if (p / "instance.toml").exists()]
    return sorted(found, key=lambda p: -sum(f.stat().st_size for f in p.iterdir() if f.is_file()))


def main() -> None:
    parser = argparse.ArgumentParser(description="Plancher d'un plan certifié : lecture, assiette, construction "
                                                 "et relaxation continue de chaque instance.")
    parser.add_argument("dossier", type=Path)
    parser.add_argument("--processus", type=int, default=2)
    parser.add_argument("--resultats", type=Path, default=ROOT / "benchmarks" / "resultats.md")
    args = parser.parse_args()
    paths = [str(p) for p in instances(args.dossier)]
    before, start = os.getloadavg(), time.perf_counter()
    with ProcessPoolExecutor(args.processus) as pool:
        rows = pd.DataFrame(list(pool.map(floor_of, paths, chunksize=1)))
    wall = time.perf_counter() - start
    sums = rows[PHASES].sum()
    lines = [
        BEGIN,
        "### Plancher d'un plan certifié (lecture, assiette, construction, relaxation continue)",
        "",
        f"Commande : `python benchmarks/plancher.py {args.dossier} --processus {args.processus}` ; "
        f"{time.strftime('%Y-%m-%d %H:%M')} ; charge avant {fr(before[0], 1)}, après {fr(os.getloadavg()[0], 1)}.",
        "",
        "| instances | temps mur s | CPU total s | " + " | ".join(f"{p} s" for p in PHASES) + " |",
        "|---|---|---|" + "---|" * len(PHASES),
        f"| {len(rows)} | {fr(wall, 1)} | {fr(sums.sum(), 1)} | " + " | ".join(fr(sums[p], 1) for p in PHASES) + " |",
        "",
        f"Relaxation : médiane {fr(np.median(rows['relaxation']), 3)} s, la plus longue "
        f"{fr(rows['relaxation'].max(), 2)} s ({rows.loc[rows['relaxation'].idxmax(), 'instance']}).",
        END,
    ]
    block = "\n".join(lines)
    print(block)
    replace_block(args.resultats, block, BEGIN, END)


if __name__ == "__main__":
    main()
