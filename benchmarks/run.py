"""Benchmark of the orientation model by size: build, solve, memory, gap, fit versus the baseline.

    /work/main/.venv/bin/python benchmarks/run.py --tailles petit moyen --moteur les-deux --temps-max 120

Each size runs in a fresh subprocess (clean peak memory: ru_maxrss of that process). The
instance is generated with `generer_taille(..., graine=1)` into a temporary folder. The
baseline is the spreadsheet method (flux_opt/baseline.py) measured with the same fit.
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
COLUMNS = [  # key, header
    ("taille", "taille"), ("segments", "segments"), ("variables", "variables"),
    ("variables_entieres", "entières"), ("contraintes", "contraintes"), ("construction_s", "construction s"),
    ("transmission_s", "transmission HiGHS s"), ("resolution_s", "résolution s"), ("duals_s", "duals s"),
    ("total_s", "total s"), ("memoire_mo", "mémoire max Mo"), ("ecart", "écart"), ("statut", "statut"),
    ("adequation", "adéquation pondérée"), ("adequation_base", "tableur"), ("gain_pct", "gain %"),
    ("violees_base", "règles violées (tableur)"),
]
PYOMO_COLUMNS = [("pyomo_construction_s", "Pyomo construction s"), ("pyomo_resolution_s", "Pyomo résolution s"),
                 ("pyomo_memoire_mo", "mémoire max Mo (Pyomo)"), ("pyomo_identique", "Pyomo = direct")]


def peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # kB on Linux


def measure(taille: str, moteur: str, temps_max: float, graine: int) -> dict:
    """Run in the child process: one size, every figure."""
    import numpy as np

    from flux_opt.assiette.flux import compute_flux
    from flux_opt.plan.baseline import baseline_fit, baseline_plan
    from flux_opt.scale.generate import generer_taille
    from flux_opt.model.build import build_model, model_size
    from flux_opt.model.highs_backend import fixed_lp_duals
    from flux_opt.model.solve import SolveurSansSolution, solve, solver_options
    from flux_opt.plan.result import make_result
    from flux_opt.input.schema import load_instance
    from flux_opt.assiette.targets import compute_targets

    out: dict = {"taille": taille}
    with tempfile.TemporaryDirectory() as tmp:
        folder = generer_taille(Path(tmp) / taille, taille, graine=graine)
        start = time.perf_counter()
        instance = load_instance(folder)
        flux = compute_flux(instance)
        targets = compute_targets(instance, flux)
        model = build_model(instance, flux, targets)
        out.update(model_size(model), construction_s=model.build_seconds)
        options = solver_options(model)
        options.temps_max_s = temps_max
        try:
            solution = solve(model, options, duals=False)
        except SolveurSansSolution as exc:
            out.update(statut=f"sans solution ({exc})", total_s=time.perf_counter() - start, memoire_mo=peak_mb())
            return out
        duals_start = time.perf_counter()
        solution.row_duals = fixed_lp_duals(model.lp, solution.values, options)
        out["duals_s"] = time.perf_counter() - duals_start
        result = make_result(model, solution)
        out["total_s"] = time.perf_counter() - start
        raw = solution.raw
        out.update(transmission_s=raw.translate_seconds, resolution_s=raw.seconds, ecart=raw.gap,
                   statut=raw.status, objectif=raw.objective, adequation=result.resume["adequation_ponderee"],
                   attributions=result.resume["attributions_prevues"], flux=flux.total,
                   violees=result.resume["regles_violees"])
        out["memoire_mo"] = peak_mb()
        base = baseline_fit(model, baseline_plan(instance, flux, targets))
        out.update(adequation_base=base.adequation_ponderee, attributions_base=base.attributions_prevues,
                   objectif_base=base.objectif, violees_base=base.regles_violees,
                   ecart_objectifs_base=base.ecart_objectifs)
        out["gain_pct"] = 100 * (out["adequation"] - base.adequation_ponderee) / base.adequation_ponderee \
            if base.adequation_ponderee else float("nan")
        if moteur in ("pyomo", "les-deux"):
            from flux_opt.model.pyomo_backend import solve_pyomo

            pyomo = solve_pyomo(model.lp, options)
            out.update(pyomo_construction_s=pyomo.translate_seconds, pyomo_resolution_s=pyomo.seconds,
                       pyomo_objectif=pyomo.objective, pyomo_memoire_mo=peak_mb())
            diff = pyomo.objective - raw.objective
            same_plan = pyomo.has_solution and np.array_equal(
                np.round(pyomo.values[model.lp.integer]), solution.values[model.lp.integer])
            out["pyomo_identique"] = ("identique" if abs(diff) <= 1e-6 * max(1.0, abs(raw.objective))
                                      else f"écart {diff:+.6g}") + ("" if same_plan else " (plan différent)")
    return out


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


SUMMARY = ("taille", "variables", "contraintes", "construction_s", "resolution_s", "total_s", "memoire_mo",
           "ecart", "gain_pct", "pyomo_construction_s", "pyomo_identique")


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
    text = path.read_text(encoding="utf-8") if path.exists() else "# Mesures de performance\n\n"
    begin, end = BLOCK.format("debut", moteur), BLOCK.format("fin", moteur)
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
