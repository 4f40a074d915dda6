"""Benchmark of `flux-opt plan` by size, phase by phase (read, assiette, build, solve, analysis, report,
write), with memory, gap and fit versus the spreadsheet baseline.

    .venv/bin/python benchmarks/run.py --tailles petit moyen grand

Each size runs in a fresh subprocess (clean peak memory: ru_maxrss of that process). The
instance is generated with `generate_size(..., graine=1)` into a temporary folder. The
baseline is the spreadsheet method (flux_opt/plan/baseline.py) measured with the same fit.
The table of every size is written between markers in benchmarks/resultats.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's flux_opt, not an installed one

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

MARK = "@@ "
BLOCK = "<!-- {} tailles, moteur {} -->"  # one block per engine choice in resultats.md
COLUMNS = [  # key, header; *_s of a phase: flux_opt/phases.py (the phases `flux-opt plan` shows)
    ("taille", "taille"), ("segments", "segments"), ("variables", "variables"),
    ("variables_entieres", "entières"), ("contraintes", "contraintes"), ("lecture_s", "lecture s"),
    ("assiette_s", "assiette s"), ("construction_s", "construction s"), ("resolution_s", "résolution s"),
    ("solveur_s", "dont solveur s"), ("analyse_s", "analyse s"), ("controle_s", "contrôle s"), ("rapport_s", "rapport s"),
    ("ecriture_s", "écriture s"), ("total_s", "total s"), ("total_sur_solveur", "total / solveur"),
    ("couts_interrompus", "coûts interrompus"), ("memoire_mo", "mémoire max Mo"), ("ecart", "écart"), ("statut", "statut"),
    ("adequation", "adéquation pondérée"), ("adequation_base", "tableur"), ("gain_pct", "gain %"),
    ("violees_base", "règles violées (tableur)"),
]
PYOMO_COLUMNS = [("pyomo_construction_s", "Pyomo construction s"), ("pyomo_resolution_s", "Pyomo résolution s"),
                 ("pyomo_memoire_mo", "mémoire max Mo (Pyomo)"), ("pyomo_identique", "Pyomo = direct")]


def peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # kB on Linux


def measure(taille: str, moteur: str, temps_max: float, graine: int) -> dict:
    """Run in the child process: one size, the whole `flux-opt plan` (report, Excel, explanation) by
    phase through the pipeline, then the spreadsheet baseline and, if asked, Pyomo."""
    from flux_opt import pipeline
    from flux_opt.model.build import model_size
    from flux_opt.model.solve import NoSolutionFound
    from flux_opt.phases import Phases
    from flux_opt.scale.generate import generate_size
    from flux_opt.report.outputs import write_run

    out: dict = {"taille": taille}
    with tempfile.TemporaryDirectory() as tmp:
        folder = generate_size(Path(tmp) / taille, taille, graine=graine)
        phases = Phases()
        start = time.perf_counter()
        instance = _with_time_limit(pipeline.load(folder, phases=phases), temps_max)
        try:
            done = pipeline.run(instance, pipeline.PlanOptions(analysis=True, conformity=True), source=str(folder), phases=phases)
        except NoSolutionFound as exc:
            out.update(statut=f"sans solution ({exc})", total_s=time.perf_counter() - start, memoire_mo=peak_mb())
            return out
        write_run(done, Path(tmp) / "sortie", phases=phases)
        out["total_s"] = time.perf_counter() - start
        out.update({f"{name}_s": seconds for name, seconds in phases.seconds.items()})
        raw, resume = done.solution.raw, done.result.resume
        out.update(model_size(done.model), transmission_s=raw.translate_seconds, solveur_s=raw.seconds,
                   total_sur_solveur=out["total_s"] / raw.seconds if raw.seconds else float("nan"),
                   ecart=raw.gap, statut=raw.status, objectif=raw.objective, adequation=resume["adequation_ponderee"],
                   attributions=resume["attributions_prevues"], flux=done.flux.total, violees=resume["regles_violees"],
                   couts_interrompus=done.explanation.temps_s.get("couts_interrompus", 0), memoire_mo=peak_mb())
        out.update(_baseline(done))
        if moteur in ("pyomo", "les-deux"):
            out.update(_pyomo(done))
    return out


def _with_time_limit(instance, temps_max: float):
    solveur = instance.parametres.solveur.model_copy(update={"temps_max_s": temps_max})
    return instance.model_copy(update={"parametres": instance.parametres.model_copy(update={"solveur": solveur})})


def _baseline(done) -> dict:
    """The spreadsheet method's fit on the same model (flux_opt/plan/baseline.py)."""
    from flux_opt.plan.baseline import baseline_fit, baseline_plan

    base = baseline_fit(done.model, baseline_plan(done.instance, done.flux, done.targets))
    fit = done.result.resume["adequation_ponderee"]
    return dict(adequation_base=base.adequation_ponderee, attributions_base=base.attributions_prevues,
                objectif_base=base.objectif, violees_base=base.regles_violees,
                ecart_objectifs_base=base.ecart_objectifs,
                gain_pct=100 * (fit - base.adequation_ponderee) / base.adequation_ponderee
                if base.adequation_ponderee else float("nan"))


def _pyomo(done) -> dict:
    import numpy as np

    from flux_opt.model.pyomo_backend import solve_pyomo
    from flux_opt.model.solve import solver_options

    raw, model = done.solution.raw, done.model
    pyomo = solve_pyomo(model.lp, solver_options(model))
    diff = pyomo.objective - raw.objective
    same_plan = pyomo.has_solution and np.array_equal(
        np.round(pyomo.values[model.lp.integer]), done.solution.values[model.lp.integer])
    return dict(pyomo_construction_s=pyomo.translate_seconds, pyomo_resolution_s=pyomo.seconds,
                pyomo_objectif=pyomo.objective, pyomo_memoire_mo=peak_mb(),
                pyomo_identique=("identique" if abs(diff) <= 1e-6 * max(1.0, abs(raw.objective))
                                 else f"écart {diff:+.6g}") + ("" if same_plan else " (plan différent)"))


def run_child(taille: str, args: argparse.Namespace) -> dict:
    """A fresh interpreter per size, so its peak memory is its own."""
    command = [sys.executable, __file__, "--mesurer", taille, "--moteur", args.moteur,
               "--temps-max", str(args.temps_max), "--graine", str(args.graine)]
    limit = 3 * args.temps_max + 600  # generation, build, duals, Pyomo: generous
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"taille": taille, "statut": f"interrompu après {limit:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        return {"taille": taille, "statut": f"échec (code {done.returncode}) {done.stderr.strip()[-300:]}"}
    return json.loads(lines[-1][len(MARK):])


def fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-2 and value else f"{value:,.2f}".replace(",", " ")
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    if isinstance(value, list):
        return ", ".join(value) or "aucune"
    return str(value)


def size_table(row: dict, columns: list[tuple[str, str]]) -> Table:
    table = Table(title=f"Taille {row['taille']}", show_header=False)
    table.add_column("mesure")
    table.add_column("valeur", justify="right")
    for key, header in columns[1:]:
        if key in row:
            table.add_row(header, fmt(row[key]))
    return table


SUMMARY = ("taille", "variables", "lecture_s", "construction_s", "solveur_s", "analyse_s", "rapport_s", "ecriture_s",
           "total_s", "total_sur_solveur", "memoire_mo", "gain_pct", "pyomo_identique")


def summary_table(rows: list[dict], columns: list[tuple[str, str]]) -> Table:
    """The key figures only (the Markdown file has every column)."""
    table = Table(title="Synthèse")
    columns = [(k, h) for k, h in columns if k in SUMMARY]
    for key, header in columns:
        table.add_column(header, justify="left" if key in ("taille", "statut") else "right")
    for row in rows:
        table.add_row(*(fmt(row.get(key)) for key, _ in columns))
    return table


def markdown(rows: list[dict], columns: list[tuple[str, str]], command: str, moteur: str) -> str:
    lines = [BLOCK.format("debut", moteur), f"### Moteur {moteur}", "", f"Commande : `{command}`  ", f"Machine : {os.cpu_count()} cœurs, Python "
             f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}.", "",
             "| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join(lines + ["", BLOCK.format("fin", moteur)])


def write_results(path: Path, block: str, moteur: str) -> None:
    """Replace this engine's block of `path`, keep the rest (other engine, batch figures)."""
    replace_block(path, block, BLOCK.format("debut", moteur), BLOCK.format("fin", moteur))


def replace_block(path: Path, block: str, begin: str, end: str) -> None:
    """Put `block` between the markers `begin` and `end` of `path` (at its end if they are missing)."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Mesures de performance\n\n"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description="Mesures du modèle d'orientation par taille d'instance.")
    parser.add_argument("--tailles", nargs="+", default=["petit", "moyen", "grand"],
                        help="tailles à mesurer (petit, moyen, grand)")
    parser.add_argument("--moteur", choices=["highs", "pyomo", "les-deux"], default="highs")
    parser.add_argument("--temps-max", type=float, default=120.0, help="limite de résolution par taille (s)")
    parser.add_argument("--graine", type=int, default=1)
    parser.add_argument("--sortie", type=Path, default=ROOT / "benchmarks" / "resultats.md")
    parser.add_argument("--mesurer", help=argparse.SUPPRESS)  # internal: the child process
    args = parser.parse_args()
    if args.mesurer:
        print(MARK + json.dumps(measure(args.mesurer, args.moteur, args.temps_max, args.graine), default=str))
        return

    console = Console()
    columns = COLUMNS + (PYOMO_COLUMNS if args.moteur != "highs" else [])
    rows = []
    for taille in args.tailles:
        with console.status(f"Mesure de la taille {taille}…"):
            row = run_child(taille, args)
        rows.append(row)
        console.print(size_table(row, columns))
    console.print(summary_table(rows, columns))
    command = "python benchmarks/run.py " + " ".join(sys.argv[1:])
    write_results(args.sortie, markdown(rows, columns, command, args.moteur), args.moteur)
    console.print(f"Résultats écrits dans {args.sortie}.")


if __name__ == "__main__":
    main()
