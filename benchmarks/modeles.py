"""Solve time of one generated instance under the two demand models, same instance, same machine.

    .venv/bin/python benchmarks/modeles.py --taille grand --repetitions 2

The composition demand model (the default, models/orientation.md §2) must solve the large
generated instance within 1.5 × the time of the transport model it replaced. Each model is
solved `--repetitions` times, alternately (so that a busy machine slows both alike), in this
process; the table keeps the best time of each (the least disturbed) and their ratio, with the
load average of the machine. The block goes between markers in benchmarks/resultats.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's flux_opt

from run import replace_block  # noqa: E402  (benchmarks/run.py, beside this script)

BEGIN, END = "<!-- debut modeles -->", "<!-- fin modeles -->"
MODELES = ("transport", "composition")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def solve_once(instance, modele: str) -> dict:
    """Build and solve (no analysis, no files): the solver's seconds, its method and gap."""
    from flux_opt.input.schema import Demande
    from flux_opt.pipeline import PlanOptions, run

    parametres = instance.parametres.model_copy(update={"demande": Demande(modele=modele)})
    start, cpu = time.perf_counter(), cpu_seconds()
    done = run(instance.model_copy(update={"parametres": parametres}), PlanOptions(duals=False))
    raw = done.solution.raw
    return dict(modele=modele, resolution_s=raw.seconds, run_s=time.perf_counter() - start,
                cpu_s=cpu_seconds() - cpu, methode=raw.methode, ecart=raw.gap,
                attributions=done.result.resume["attributions_prevues"], entieres=int(done.model.lp.integer.sum()))


def markdown(best: dict[str, dict], command: str, taille: str, load: tuple[float, float]) -> str:
    t, c = best["transport"], best["composition"]
    lines = [BEGIN, "## Temps de résolution selon le modèle de demande", "",
             f"Commande : `{command}`  ",
             f"Instance `{taille}` générée (graine 1), {os.cpu_count()} cœurs, charge moyenne {load[0]:.1f} avant, "
             f"{load[1]:.1f} après ; meilleur temps de chaque modèle.", "",
             "| modèle | résolution s | méthode | écart | attributions prévues | variables entières |",
             "|---|---|---|---|---|---|"]
    for row in (t, c):
        lines.append(f"| {row['modele']} | {row['resolution_s']:.1f} | {row['methode']} | {row['ecart']:.2e} | "
                     f"{row['attributions']:.1f} | {row['entieres']} |")
    lines += ["", f"Rapport composition / transport : **{c['resolution_s'] / t['resolution_s']:.2f}** (limite 1,5).",
              "", END]
    return "\n".join(lines)


def main() -> None:
    from flux_opt.input.schema import load_instance
    from flux_opt.scale.generate import generate_size

    parser = argparse.ArgumentParser(description="Temps de résolution : modèle de demande transport et composition.")
    parser.add_argument("--taille", default="grand", choices=["petit", "moyen", "grand"])
    parser.add_argument("--repetitions", type=int, default=2)
    parser.add_argument("--sortie", type=Path, default=ROOT / "benchmarks" / "resultats.md")
    args = parser.parse_args()
    before = os.getloadavg()[0]
    best: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        instance = load_instance(generate_size(Path(tmp) / args.taille, args.taille, graine=1))
        for _ in range(args.repetitions):
            for modele in MODELES:
                row = solve_once(instance, modele)
                print(f"{modele:12s} résolution {row['resolution_s']:6.1f} s  (chaîne {row['run_s']:.1f} s, "
                      f"CPU {row['cpu_s']:.1f} s, {row['methode']}, écart {row['ecart']:.2e})", flush=True)
                if modele not in best or row["resolution_s"] < best[modele]["resolution_s"]:
                    best[modele] = row
    command = "python benchmarks/modeles.py " + " ".join(sys.argv[1:])
    block = markdown(best, command, args.taille, (before, os.getloadavg()[0]))
    print(block)
    replace_block(args.sortie, block, BEGIN, END)


if __name__ == "__main__":
    main()
