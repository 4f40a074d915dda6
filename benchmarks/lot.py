"""Benchmark of `flux-opt lot` on a folder of instances (the national set): wall time, machine load,
and the seconds of each phase summed and per instance, read from each instance's synthese.json.

    .venv/bin/flux-opt generer /tmp/national --national --graine 0
    .venv/bin/python benchmarks/lot.py /tmp/national --sortie-lot /tmp/national-lot --processus 2

The batch runs as a user runs it (`flux-opt lot DOSSIER --sortie SORTIE --processus N --pas-de-reprise`,
full outputs unless --sans-analyse); its wall time and the load average before and after are kept in
SORTIE/mesure_lot.json, so that `--lire` rebuilds the table without planning again. The table is
written between markers in benchmarks/resultats.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's flux_opt, not an installed one

from flux_opt.phases import LABELS  # noqa: E402
from run import replace_block  # noqa: E402  (benchmarks/run.py, beside this script)

MEASURE = "mesure_lot.json"
BEGIN, END = "<!-- debut lot -->", "<!-- fin lot -->"


def run_batch(dossier: Path, sortie: Path, processus: int, analyse: bool, couts: bool = False,
              cluster: str | None = None) -> dict:
    """Plan the whole folder through the command line; wall time and load average around it."""
    command = [str(Path(sys.executable).parent / "flux-opt"), "lot", str(dossier), "--sortie", str(sortie),
               "--processus", str(processus), "--pas-de-reprise"] + ([] if analyse else ["--sans-analyse"]) + (
               ["--couts"] if couts else []) + (["--cluster", cluster] if cluster else [])
    before = os.getloadavg()
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL)
    measure = {"commande": "flux-opt " + " ".join(command[1:]), "code": done.returncode,
               "processus": processus if not cluster else "Dask (voir par processus)",
               "mur_s": round(time.perf_counter() - start, 1), "charge_avant": before, "charge_apres": os.getloadavg(),
               "date": time.strftime("%Y-%m-%d %H:%M")}
    (sortie / MEASURE).write_text(json.dumps(measure, indent=1), encoding="utf-8")
    return measure


def instance_lines(dossier: Path, sortie: Path) -> pd.DataFrame:
    """One row per instance: its synthese.json (code, seconds, phases, worker memory) and its size."""
    rows = []
    for path in sorted(sortie.glob("*/synthese.json")):
        line = json.loads(path.read_text(encoding="utf-8"))
        rows.append({"instance": line["instance"], "code": int(line["code"]), "flux": pd.to_numeric(line["flux"]),
                     "secondes": line["secondes"], "memoire_mo": line.get("memoire_mo"),
                     "cpu_s": line.get("cpu_s"), "processus": line.get("processus", ""),
                     **{phase: line.get("phases", {}).get(phase, 0.0) for phase in LABELS},
                     **{f"cpu_{phase}": line.get("phases_cpu", {}).get(phase) for phase in LABELS},
                     "couts_interrompus": _cut_costs(path.parent)})
    lines = pd.DataFrame(rows)
    manifest = dossier / "manifeste.csv"
    if manifest.is_file():
        sizes = pd.read_csv(manifest, dtype={"instance": str}).set_index("instance")["logements"]
        lines["logements"] = lines["instance"].map(sizes)
    return lines


def _cut_costs(folder: Path) -> int:
    try:
        return int(json.loads((folder / "explication.json").read_text(encoding="utf-8"))["temps_s"]["couts_interrompus"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def fr(value: float, digits: int = 0) -> str:
    """1 234,5 — the French way, as the rest of resultats.md."""
    return f"{value:,.{digits}f}".replace(",", "\u202f").replace(".", ",")


def markers(bloc: str) -> tuple[str, str]:
    """The markers of one table in resultats.md: one block per kind of run (plans only, full
    outputs, on a cluster), each replaced by its own new measure."""
    return (BEGIN, END) if bloc == "lot" else (f"<!-- debut lot {bloc} -->", f"<!-- fin lot {bloc} -->")


def markdown(lines: pd.DataFrame, measure: dict, bloc: str = "lot") -> str:
    codes = lines["code"].value_counts()
    load = ", ".join(fr(x, 1) for x in measure["charge_avant"]) + " → " + ", ".join(fr(x, 1) for x in measure["charge_apres"])
    memory = lines["memoire_mo"].dropna()
    begin, end = markers(bloc)
    title = {"lot": "Lot complet, phases par instance"}.get(bloc, f"Lot ({bloc}), phases par instance")
    out = [begin, f"### {title}", "",
           f"Commande : `python benchmarks/lot.py` → `{measure['commande']}`  ",
           f"Machine : {os.cpu_count()} cœurs ; charge (1, 5, 15 min) avant → après : {load} ; {measure['date']}.", "",
           "| instances | logements | flux | processus | temps (mur) | somme des durées par instance | "
           "conformes | règles violées (code 3) | invalides | échecs | mémoire max d'un processus |",
           "|---|---|---|---|---|---|---|---|---|---|---|",
           f"| {len(lines)} | {fr(lines['logements'].sum()) if 'logements' in lines else '—'} | {fr(lines['flux'].sum())} | "
           f"{measure['processus']} | {fr(measure['mur_s'])} s | {fr(lines['secondes'].sum())} s | {codes.get(0, 0)} | "
           f"{codes.get(3, 0)} | {codes.get(2, 0)} | {int((~lines['code'].isin([0, 2, 3])).sum())} | "
           f"{fr(memory.max()) + ' Mo' if len(memory) else '—'} |", "",
           "| phase | somme s | part | CPU s | médiane par instance s | 90 % des instances sous s | la plus longue s |",
           "|---|---|---|---|---|---|---|"]
    total = lines["secondes"].sum()
    for phase, label in [*LABELS.items(), ("secondes", "instance entière")]:
        column = lines[phase]
        if not column.any():
            continue  # a phase `lot` does not run (the simulated year)
        cpu = lines.get("cpu_s" if phase == "secondes" else f"cpu_{phase}")
        cpu = fr(cpu.sum()) if cpu is not None and cpu.notna().any() else "—"
        out.append(f"| {label} | {fr(column.sum())} | {fr(100 * column.sum() / total)} % | {cpu} | "
                   f"{fr(column.median(), 2)} | {fr(column.quantile(0.9), 2)} | {fr(column.max(), 1)} |")
    workers = lines.loc[lines["processus"] != ""].groupby("processus")
    if workers.ngroups:
        out += ["", "| processus (machine:pid) | instances | somme des durées s | CPU s |", "|---|---|---|---|"]
        for name, group in workers:
            out.append(f"| {name} | {len(group)} | {fr(group['secondes'].sum())} | {fr(group['cpu_s'].sum())} |")
    out += ["", f"Instances dont le coût des règles a été interrompu par le budget d'analyse : "
                f"{int((lines['couts_interrompus'] > 0).sum())} sur {len(lines)}.", "", end]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description="Mesure de flux-opt lot (jeu national) phase par phase.")
    parser.add_argument("dossier", type=Path, help="dossier d'instances (jeu national : manifeste.csv)")
    parser.add_argument("--sortie-lot", type=Path, required=True, help="dossier des résultats du lot")
    parser.add_argument("--processus", type=int, default=2)
    parser.add_argument("--sans-analyse", action="store_true", help="fichiers du plan seulement")
    parser.add_argument("--couts", action="store_true", help="avec le coût des règles (flux-opt lot --couts)")
    parser.add_argument("--cluster", help="adresse d'un ordonnanceur Dask (flux-opt lot --cluster)")
    parser.add_argument("--lire", action="store_true", help="relire un lot déjà mesuré, sans planifier")
    parser.add_argument("--resultats", type=Path, default=ROOT / "benchmarks" / "resultats.md")
    parser.add_argument("--bloc", default="lot", help="nom du tableau dans resultats.md (ex. « plans seuls », "
                        "« cluster ») : chaque sorte de lot garde le sien")
    args = parser.parse_args()
    args.sortie_lot.mkdir(parents=True, exist_ok=True)
    if args.lire:
        measure = json.loads((args.sortie_lot / MEASURE).read_text(encoding="utf-8"))
    else:
        measure = run_batch(args.dossier, args.sortie_lot, args.processus, not args.sans_analyse, args.couts,
                            args.cluster)
    block = markdown(instance_lines(args.dossier, args.sortie_lot), measure, args.bloc)
    print(block)
    replace_block(args.resultats, block, *markers(args.bloc))
    print(f"Résultats écrits dans {args.resultats}.")


if __name__ == "__main__":
    main()
