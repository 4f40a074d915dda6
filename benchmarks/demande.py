"""The simulated year of three plans on generated instances with realistic demand tension.

    .venv/bin/python benchmarks/demande.py --graines 1 2 3 --tirages 100

For each seed, `generate_instance(..., tension=True)` writes an instance (local pressure per
commune × typologie, pool compositions by réservataire type). Three plans are made:
(a) the spreadsheet method (flux_opt/plan/baseline.py), (b) the previous demand model
(`[demande] modele = "transport"`: the optimiser chooses the households), (c) the new model
(`composition`, models/orientation.md). Each plan's year is simulated `--tirages` times by the
same simulator (flux_opt/year/evaluation.py, `flux-opt evaluer`). The table goes between markers
in benchmarks/resultats.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's flux_opt

from run import replace_block  # noqa: E402  (benchmarks/run.py, beside this script)

BEGIN, END = "<!-- debut demande -->", "<!-- fin demande -->"


def plans(folder: Path, instance) -> dict[str, Path]:
    """The three plans of the instance, each written as a plan folder."""
    from flux_opt.assiette.flux import compute_flux
    from flux_opt.assiette.targets import compute_targets
    from flux_opt.input.schema import Demande
    from flux_opt.pipeline import PlanOptions, run
    from flux_opt.plan.baseline import baseline_plan
    from flux_opt.report.exports import write_csv

    out = {}
    flux = compute_flux(instance)
    base = baseline_plan(instance, flux, compute_targets(instance, flux))
    base["qpv"] = base["qpv"].map({True: "oui", False: "non"})
    out["tableur"] = folder / "tableur"
    out["tableur"].mkdir()
    write_csv(base, out["tableur"] / "plan.csv")
    for name, modele in (("transport", "transport"), ("composition", "composition")):
        parametres = instance.parametres.model_copy(update={"demande": Demande(modele=modele)})
        start = time.perf_counter()
        result = run(instance.model_copy(update={"parametres": parametres}), PlanOptions(duals=False)).result
        out[name] = folder / name
        out[name].mkdir()
        write_csv(result.plan, out[name] / "plan.csv")
        write_csv(result.attributions, out[name] / "attributions.csv")
        print(f"  {name}: résolu en {time.perf_counter() - start:.1f} s ({result.resume['methode_resolution']}, "
              f"écart {result.resume['ecart_optimalite']}, règles violées : {result.resume['regles_violees'] or 'aucune'})")
    return out


def measure(graine: int, logements: int, tirages: int) -> list[dict]:
    from flux_opt.input.schema import load_instance
    from flux_opt.scale.generate import generate_instance
    from flux_opt.year.evaluation import evaluate_folder

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = generate_instance(Path(tmp) / "instance", logements, graine=graine, tension=True)
        instance = load_instance(folder)
        for name, plan in plans(Path(tmp), instance).items():
            t = evaluate_folder(plan, instance, tirages, graine).table
            lettings = t.loc[(t["indicateur"] == "attributions") & (t["portee"] == "ensemble")].iloc[0]
            vacant = t.loc[t["indicateur"] == "logements vacants"].iloc[0]
            shares = t.loc[t["indicateur"].str.startswith("part ")]
            cia = shares.loc[shares["indicateur"].str.startswith("part cia_")]
            # a réservataire without any letting has no share: the target does not apply (« sans objet »)
            applicable = shares.loc[shares["moyenne"].notna()]
            held = int((applicable["p95"] >= applicable["cible"] - 1e-9).sum())
            void = len(shares) - len(applicable)
            rows.append(dict(graine=graine, plan=name, attributions=lettings["moyenne"], ecart_type=lettings["ecart_type"],
                             vacants=vacant["moyenne"],
                             cia=", ".join(f"{100 * m:.1f} % [{100 * a:.1f}–{100 * b:.1f}] / {100 * c:.0f} %"
                                           for m, a, b, c in zip(cia["moyenne"], cia["p05"], cia["p95"], cia["cible"])),
                             cibles=f"{held}/{len(applicable)}" + (f" ({void} sans objet)" if void else "")))
    return rows


def markdown(rows: list[dict], command: str, logements: int, tirages: int) -> str:
    names = {"tableur": "(a) tableur", "transport": "(b) modèle précédent", "composition": "(c) nouveau modèle"}
    lines = [BEGIN, "## Année simulée : tableur, modèle de demande précédent, nouveau modèle", "",
             f"Commande : `{command}`  ",
             f"Instances générées avec tension (`generate_instance(..., {logements} logements, tension=True)`), "
             f"{tirages} tirages par plan, même simulateur (`flux-opt evaluer`). Attributions : moyenne ± écart-type "
             "des baux signés par le réservataire ; CIA : part simulée moyenne [5 %–95 %] / cible ; "
             "cibles tenues : cibles de mixité (CIA, mixite.csv, publics prioritaires) dont la cible est "
             "dans l'intervalle simulé ou en dessous (sans objet : réservataire sans aucune attribution simulée).", "",
             "| graine | plan | attributions | vacants | parts CIA simulées | cibles tenues |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['graine']} | {names[r['plan']]} | {r['attributions']:.1f} ± {r['ecart_type']:.1f} | "
                     f"{r['vacants']:.1f} | {r['cia'] or '—'} | {r['cibles']} |")
    return "\n".join(lines + ["", END])


def main() -> None:
    parser = argparse.ArgumentParser(description="Année simulée de trois plans sur des instances générées avec tension.")
    parser.add_argument("--graines", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--logements", type=int, default=3000)
    parser.add_argument("--tirages", type=int, default=100)
    parser.add_argument("--sortie", type=Path, default=ROOT / "benchmarks" / "resultats.md")
    args = parser.parse_args()
    rows = []
    for graine in args.graines:
        print(f"Graine {graine}…")
        rows += measure(graine, args.logements, args.tirages)
    command = "python benchmarks/demande.py " + " ".join(sys.argv[1:])
    block = markdown(rows, command, args.logements, args.tirages)
    print(block)
    replace_block(args.sortie, block, BEGIN, END)


if __name__ == "__main__":
    main()
