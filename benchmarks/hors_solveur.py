"""Plans only (`lot --sans-analyse`): the CPU seconds of everything but HiGHS's own solve, per phase,
before / after a change, side by side on a fixed sample of a national set (the two versions
alternating chunk by chunk, so that the load of the shared machine weighs on both alike).

    git archive <commit d'avant> | tar -x -C /tmp/avant
    .venv/bin/python benchmarks/hors_solveur.py /tmp/national --avant /tmp/avant --echantillon liste.txt \
        --fin-de-lot /tmp/national-lot

Each version runs in its own Python (`PYTHONPATH` = its source tree) and plans each instance with
`scale.batch.plan_one`, as a `lot` worker does (pipeline, plan files, the State's contingent,
synthese.json), into a scratch folder. HiGHS's `run()` is timed apart, so that « resolution » splits
into HiGHS and the rest (the split by financement made whole, the set-up of the duals' LP, the
result tables). `--fin-de-lot`: the end of a lot (`write_national_summary`: synthese_nationale.csv,
its pages, the view of each département) on a copy of a finished lot's output folder, once per version.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from lot_comparaison import fr  # noqa: E402  (benchmarks/, beside this script)

BEGIN, END = "<!-- debut hors solveur -->", "<!-- fin hors solveur -->"
PHASES = ["lecture", "assiette", "construction", "resolution_hors_highs", "analyse", "ecriture", "reste_du_lot"]


def _time_highs() -> list[float]:
    """CPU seconds spent in HiGHS's run() from now on (the solver's own work)."""
    import highspy

    spent = [0.0]
    run = highspy.Highs.run

    def timed(self):
        start = time.process_time()
        try:
            return run(self)
        finally:
            spent[0] += time.process_time() - start

    highspy.Highs.run = timed
    return spent


def measure_chunk(kept: str, paths: list[str]) -> None:
    """In the child: each instance as a `lot --sans-analyse` worker plans it (into `kept`/<instance>, or
    a scratch folder if `kept` is "-"); one JSON line each."""
    from flux_opt.scale import batch

    highs = _time_highs()
    with tempfile.TemporaryDirectory() as scratch:
        for path in paths:
            highs[0] = 0.0
            start = time.process_time()
            empreinte = batch.fingerprint(Path(path), "highs", False, False)
            folder = Path(scratch if kept == "-" else kept) / Path(path).name
            line = batch.plan_one(path, str(folder), "highs", "", "", empreinte, False, False)
            cpu = time.process_time() - start
            phases = line["phases_cpu"]
            record = {p: phases.get(p, 0.0) for p in ("lecture", "assiette", "construction", "analyse", "ecriture")}
            record["resolution_hors_highs"] = phases.get("resolution", 0.0) - highs[0]
            record["reste_du_lot"] = cpu - sum(phases.values())  # fingerprint, contingent, synthese.json
            print(json.dumps({"instance": Path(path).name, "cpu_s": cpu, "highs": highs[0], "code": line["code"],
                              **record}), flush=True)


def measure_end(sortie: str) -> None:
    """In the child: the end of a lot on a copy of `sortie`."""
    from flux_opt.scale import batch

    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "lot"
        shutil.copytree(sortie, copy)
        start = time.process_time()
        batch.write_national_summary(copy)
        print(json.dumps({"fin_de_lot": time.process_time() - start}), flush=True)


def _child(source: Path, *args: str) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(source)}
    done = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def compare(paths: list[str], versions: dict[str, Path], chunk: int, kept: Path | None) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {v: [] for v in versions}
    order = list(versions.items())
    for k in range(0, len(paths), chunk):
        for version, source in order[:: 1 if (k // chunk) % 2 == 0 else -1]:
            folder = str(kept / version) if kept else "-"
            rows[version] += _child(source, "--enfant", folder, *paths[k:k + chunk])
    return rows


def markdown(rows: dict[str, list[dict]], end: dict[str, float] | None, command: str, load: list) -> str:
    def total(version: str, key: str) -> float:
        return sum(r.get(key, 0.0) for r in rows[version])

    out = [BEGIN, "### Plans seuls : le temps hors du solveur, avant / après (temps CPU)", "",
           f"Commande : `{command}` ; {time.strftime('%Y-%m-%d %H:%M')}.  ",
           f"Machine : {os.cpu_count()} cœurs partagés ; charge (1, 5, 15 min) avant et après : "
           + " ; ".join(", ".join(fr(x) for x in l) for l in load) + ".", "",
           "| phase (somme sur l'échantillon) | CPU avant s | CPU après s | rapport |", "|---|---|---|---|"]
    for phase in PHASES:
        b, a = total("avant", phase), total("apres", phase)
        out.append(f"| {phase} | {fr(b, 2)} | {fr(a, 2)} | ×{fr(b / a, 2) if a else '—'} |")
    b = sum(total("avant", p) for p in PHASES)
    a = sum(total("apres", p) for p in PHASES)
    out.append(f"| **hors HiGHS, par instance** | **{fr(b, 2)}** | **{fr(a, 2)}** | **×{fr(b / a, 2)}** |")
    out.append(f"| HiGHS (pour mémoire) | {fr(total('avant', 'highs'), 1)} | {fr(total('apres', 'highs'), 1)} | |")
    if end:
        out.append(f"| fin du lot (synthèses, vue par département) | {fr(end['avant'], 2)} | {fr(end['apres'], 2)} | "
                   f"×{fr(end['avant'] / end['apres'], 2)} |")
    same = sum(x["code"] == y["code"] for x, y in zip(rows["avant"], rows["apres"]))
    out += ["", f"{len(rows['apres'])} instances ; mêmes codes de sortie : {same}.", "", END]
    return "\n".join(out)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--enfant":
        measure_chunk(sys.argv[2], sys.argv[3:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--enfant-fin":
        measure_end(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description="Plans seuls : temps CPU hors du solveur, avant / après.")
    parser.add_argument("dossier", type=Path, help="jeu national")
    parser.add_argument("--avant", type=Path, required=True, help="arbre source de la version d'avant")
    parser.add_argument("--apres", type=Path, default=ROOT, help="arbre source de la version d'après (celui-ci)")
    parser.add_argument("--echantillon", type=Path, required=True, help="noms des instances, un par ligne")
    parser.add_argument("--fin-de-lot", type=Path, help="dossier de sortie d'un lot fini (copié, jamais modifié)")
    parser.add_argument("--paquet", type=int, default=5, help="instances par passage d'une version")
    parser.add_argument("--garder", type=Path, help="écrire les plans dans GARDER/avant et GARDER/apres (à comparer)")
    parser.add_argument("--resultats", type=Path, default=ROOT / "benchmarks" / "resultats.md")
    args = parser.parse_args()
    versions = {"avant": args.avant.resolve(), "apres": args.apres.resolve()}
    paths = [str(args.dossier / name) for name in args.echantillon.read_text(encoding="utf-8").split()]
    load = [os.getloadavg()]
    rows = compare(paths, versions, args.paquet, args.garder.resolve() if args.garder else None)
    end = ({v: _child(source, "--enfant-fin", str(args.fin_de_lot))[0]["fin_de_lot"] for v, source in versions.items()}
           if args.fin_de_lot else None)
    load.append(os.getloadavg())
    command = "python " + " ".join(["benchmarks/hors_solveur.py", *sys.argv[1:]])
    block = markdown(rows, end, command, load)
    print(block)
    from run import replace_block  # here only: run.py puts this checkout first on sys.path, not for the children

    replace_block(args.resultats, block, BEGIN, END)


if __name__ == "__main__":
    main()
