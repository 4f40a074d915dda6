"""Plans only (`lot --sans-analyse`), before / after a change, side by side on a fixed sample of a
national set: CPU seconds per phase measured in one run, the two versions alternating chunk by
chunk so that the machine's load weighs on both alike (the machine is shared: CPU time, not wall
time, is what a phase costs), and each plan's objective against the accepted gap.

    git archive main | tar -x -C /tmp/avant            # the version before, as a source tree
    .venv/bin/python benchmarks/lot_comparaison.py /tmp/national --avant /tmp/avant --instances 40

Each version runs in its own Python (`PYTHONPATH` = its source tree) that plans the instances of a
chunk as `flux-opt lot --sans-analyse` does (pipeline, plan files written) and prints one JSON line
per instance. The table goes between markers in benchmarks/resultats.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MARKERS = {"plans": ("<!-- debut lot comparaison -->", "<!-- fin lot comparaison -->"),
           "complet": ("<!-- debut lot complet comparaison -->", "<!-- fin lot complet comparaison -->"),
           "rapport": ("<!-- debut lot rapport comparaison -->", "<!-- fin lot rapport comparaison -->")}
TITLES = {"plans": "Plans seuls",
          "complet": "Sorties complètes (rapport, explication, contrôle), avant : coût des règles toujours ; "
                     "après : seulement avec --couts",
          "rapport": "Sorties complètes sans le coût des règles (lot sans --couts)"}
FLAGS = {"plans": "", "complet": " --complet", "rapport": " --rapport"}
PHASES = ["lecture", "assiette", "construction", "resolution", "analyse", "controle", "rapport", "ecriture"]
SIZES = [(0, 2_000, "< 2 000"), (2_000, 10_000, "2 000 – 10 000"), (10_000, 30_000, "10 000 – 30 000"),
         (30_000, 10**9, "≥ 30 000")]


def sample(dossier: Path, n: int) -> pd.DataFrame:
    """`n` instances spread evenly over the size ranks of the national set (smallest and largest included)."""
    manifest = pd.read_csv(dossier / "manifeste.csv", dtype={"instance": str, "departement": str})
    ranked = manifest.sort_values(["logements", "instance"]).reset_index(drop=True)
    return ranked.iloc[np.unique(np.linspace(0, len(ranked) - 1, n).round().astype(int))].reset_index(drop=True)


MODES = {"plans": {"analyse": False, "controle": False},  # lot --sans-analyse
         "complet": {"analyse": True, "controle": True, "couts": False},  # lot (rule costs only if asked)
         "complet-couts": {"analyse": True, "controle": True, "couts": True}}  # lot before: costs always


def measure_chunk(mode: str, paths: list[str]) -> None:
    """In the child: plan each instance as `lot` does in `mode` and print one JSON line each."""
    from flux_opt import pipeline
    from flux_opt.phases import Phases

    for path in paths:
        marks: dict[str, float] = {}
        cpu: dict[str, float] = {}

        def listener(name, event, _seconds, marks=marks, cpu=cpu):  # CPU seconds, with any Phases
            if event == "debut":
                marks[name] = time.process_time()
            else:
                cpu[name] = cpu.get(name, 0.0) + time.process_time() - marks[name]

        phases = Phases(listener)
        start = time.process_time()
        done = pipeline.run_path(path, _options(pipeline, MODES[mode]), phases=phases)
        with tempfile.TemporaryDirectory() as out:
            _write(pipeline, done, Path(out) / "plan", phases)
        r, raw = done.result.resume, done.solution.raw
        print(json.dumps({"chemin": path, "cpu_s": time.process_time() - start, **{f"cpu_{k}": v for k, v in cpu.items()},
                          "objectif": raw.objective, "borne": raw.bound, "ecart": r["ecart_optimalite"],
                          "statut": r["statut_solveur"], "methode": r["methode_resolution"], "flux": r["flux"],
                          "code": r["code_sortie"]}), flush=True)


def _options(pipeline, wanted: dict):
    """PlanOptions in the names of the version measured (the fields were renamed in English)."""
    fields = pipeline.PlanOptions.__dataclass_fields__
    new = {"analyse": "analysis", "controle": "conformity", "couts": "rule_costs"}
    return pipeline.PlanOptions(**{(new[k] if new[k] in fields else k): v for k, v in wanted.items()})


def _write(pipeline, done, folder: Path, phases) -> None:
    try:
        from flux_opt.report.outputs import write_run
    except ImportError:  # before the outputs stage moved to report/outputs.py
        pipeline.write(done, folder, phases=phases)
    else:
        write_run(done, folder, phases=phases)


def run_chunk(source: Path, mode: str, paths: list[str]) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(source)}
    done = subprocess.run([sys.executable, __file__, "--enfant", mode, *paths], env=env, capture_output=True,
                          text=True, check=True)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def compare(dossier: Path, avant: Path, apres: Path, n: int, chunk: int,
            modes: tuple[str, str] = ("plans", "plans")) -> tuple[pd.DataFrame, dict]:
    chosen = sample(dossier, n)
    paths = [str(dossier / name) for name in chosen["instance"]]
    rows = {"avant": [], "apres": []}
    load = [os.getloadavg()]
    for k in range(0, len(paths), chunk):
        for version, source, mode in (("avant", avant, modes[0]), ("apres", apres, modes[1])
                                      )[:: 1 if (k // chunk) % 2 == 0 else -1]:
            rows[version] += run_chunk(source, mode, paths[k:k + chunk])
        load.append(os.getloadavg())
    before, after = (pd.DataFrame(rows[v]).set_index("chemin") for v in ("avant", "apres"))
    table = chosen.assign(chemin=paths).set_index("chemin")
    table = table.join(before.add_suffix("_avant")).join(after.add_suffix("_apres")).reset_index()
    return table, {"charges": load, "date": time.strftime("%Y-%m-%d %H:%M"), "instances": len(table),
                   "modes": modes}


def fr(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}".replace(",", "\u202f").replace(".", ",")


def markdown(t: pd.DataFrame, info: dict, avant: str, apres: str) -> str:
    accepted = np.maximum(0.005 * t["flux_apres"], 1e-4 * t["borne_avant"].abs())
    loss = t["objectif_avant"] - t["objectif_apres"]
    within = (t["borne_avant"].combine(t["borne_apres"], min) - t["objectif_apres"]) <= accepted + 1e-6
    load = " ; ".join(", ".join(fr(x) for x in l) for l in info["charges"][:: max(1, len(info["charges"]) // 4)])
    kind = info["kind"]
    begin, end = MARKERS[kind]
    out = [begin, f"### {TITLES[kind]}, avant / après, côte à côte (temps CPU)", "",
           f"Commande : `python benchmarks/lot_comparaison.py DOSSIER --avant {avant} --instances {info['instances']}"
           f"{FLAGS[kind]}` "
           f"(avant : {avant}, après : {apres}) ; {info['date']}.  ",
           f"Machine : {os.cpu_count()} cœurs partagés ; charge (1, 5, 15 min) pendant la mesure : {load}.", "",
           "| instances (logements) | n | CPU avant s | CPU après s | rapport | résolution avant s | résolution après s |",
           "|---|---|---|---|---|---|---|"]
    for low, high, label in SIZES + [(0, 10**9, "toutes")]:
        part = t.loc[(t["logements"] >= low) & (t["logements"] < high)]
        if not len(part):
            continue
        b, a = part["cpu_s_avant"].sum(), part["cpu_s_apres"].sum()
        out.append(f"| {label} | {len(part)} | {fr(b)} | {fr(a)} | ×{fr(b / a, 2)} | "
                   f"{fr(part['cpu_resolution_avant'].sum())} | {fr(part['cpu_resolution_apres'].sum())} |")
    phases = " ; ".join(f"{p} {fr(t[f'cpu_{p}_avant'].sum())} → {fr(t[f'cpu_{p}_apres'].sum())}"
                        for p in PHASES if f"cpu_{p}_avant" in t and f"cpu_{p}_apres" in t)
    methods = t["methode_apres"].value_counts().to_dict()
    out += ["", f"Par phase (somme CPU s, avant → après) : {phases}.  ",
            f"Méthode après : {', '.join(f'{k} {v}' for k, v in methods.items())}.  ",
            f"Objectif : plan après dans l'écart accepté (0,5 % du flux) de la meilleure borne pour "
            f"{int(within.sum())} instances sur {len(t)} ; perte d'objectif après − avant : médiane "
            f"{fr(loss.median(), 3)}, la plus grande {fr(loss.max(), 2)} (écart accepté médian {fr(accepted.median(), 2)}) ; "
            f"mêmes codes de sortie : {int((t['code_avant'] == t['code_apres']).sum())} sur {len(t)}.", "", end]
    return "\n".join(out)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--enfant":
        measure_chunk(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description="Plans seuls avant / après sur un échantillon du jeu national.")
    parser.add_argument("dossier", type=Path, help="jeu national (manifeste.csv)")
    parser.add_argument("--avant", type=Path, required=True, help="arbre source de la version d'avant")
    parser.add_argument("--apres", type=Path, default=ROOT, help="arbre source de la version d'après (celui-ci)")
    parser.add_argument("--instances", type=int, default=40)
    parser.add_argument("--complet", action="store_true",
                        help="sorties complètes : avant avec le coût des règles (l'ancien lot), après sans "
                             "(lot sans --couts)")
    parser.add_argument("--rapport", action="store_true",
                        help="sorties complètes sans le coût des règles avant comme après (lot sans --couts) : "
                             "ce que coûtent l'analyse et le rapport")
    parser.add_argument("--paquet", type=int, default=5, help="instances par passage d'une version")
    parser.add_argument("--csv", type=Path, help="écrire aussi le détail par instance")
    parser.add_argument("--resultats", type=Path, default=ROOT / "benchmarks" / "resultats.md")
    args = parser.parse_args()
    kind = "rapport" if args.rapport else "complet" if args.complet else "plans"
    modes = {"plans": ("plans", "plans"), "complet": ("complet-couts", "complet"), "rapport": ("complet", "complet")}[kind]
    table, info = compare(args.dossier, args.avant.resolve(), args.apres.resolve(), args.instances, args.paquet,
                          modes)
    info["kind"] = kind
    if args.csv:
        table.to_csv(args.csv, index=False)
    block = markdown(table, info, str(args.avant), str(args.apres))
    print(block)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from run import replace_block

    replace_block(args.resultats, block, *MARKERS[kind])


if __name__ == "__main__":
    main()
