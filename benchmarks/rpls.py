"""Time of `flux-opt importer rpls` on synthetic RPLS extracts of growing size (one bailleur, one département).

    .venv/bin/python benchmarks/rpls.py --lignes 10000 100000 400000

Each extract is generated (flux_opt/rpls/synthetic.py, seed 1) and written as a `;` CSV in the
declaration form, then imported as the command does: reading and checking (rpls/read.py), the rotation
and its shrinkage (rpls/rotation.py), writing parc.csv and rotation.csv (rpls/write.py). Printed as a
table and written between markers in benchmarks/resultats.md, with the load average of the machine.
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

BEGIN, END = "<!-- debut rpls -->", "<!-- fin rpls -->"


def measure(lignes: int, folder: Path, suffix: str = ".csv") -> dict:
    from flux_opt.rpls.read import read_rpls
    from flux_opt.rpls.rotation import estimate_rotation
    from flux_opt.rpls.synthetic import generate_rpls, write_rpls
    from flux_opt.rpls.write import import_rpls

    path = write_rpls(generate_rpls(lignes, graine=1, forme="declaration"), folder / f"rpls_{lignes}{suffix}")
    start = time.perf_counter()
    extract = read_rpls(path)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    rotation = estimate_rotation(extract.dwellings, 2027)
    rotation_s = time.perf_counter() - start
    start = time.perf_counter()
    result = import_rpls(path, folder / f"instance_{lignes}", annee=2027)
    total_s = time.perf_counter() - start
    return {"lignes": lignes, "format": suffix[1:], "mo": round(path.stat().st_size / 1e6, 1), "communes": extract.dwellings["commune"].nunique(),
            "cellules": len(rotation.cells), "parc": len(result.parc), "lecture_s": read_s, "rotation_s": rotation_s,
            "total_s": total_s}


def main() -> None:
    parser = argparse.ArgumentParser(description="Temps de flux-opt importer rpls selon la taille du fichier.")
    parser.add_argument("--lignes", nargs="+", type=int, default=[10_000, 100_000, 400_000])
    parser.add_argument("--xlsx", nargs="*", type=int, default=[50_000], help="tailles lues depuis un classeur")
    parser.add_argument("--sortie", type=Path, default=ROOT / "benchmarks" / "resultats.md")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, suffix in [(n, ".csv") for n in args.lignes] + [(n, ".xlsx") for n in args.xlsx]:
            rows.append(measure(n, Path(tmp), suffix))
            r = rows[-1]
            print(f"{r['lignes']:>8} lignes ({r['mo']} Mo) : lecture {r['lecture_s']:.2f} s, rotation "
                  f"{r['rotation_s']:.2f} s, import complet {r['total_s']:.2f} s", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load_text = f"{os.getloadavg()[0]:.1f}".replace(".", ",")
    lines = ["<!-- debut rpls -->", "## Import d'un fichier RPLS (`flux-opt importer rpls`)", "",
             f"`python benchmarks/rpls.py` (fichiers synthétiques de la déclaration, séparateur `;`, graine 1 ; "
             f"charge de la machine {load_text}, mémoire maximale du processus {peak:.0f} Mo). L'import complet lit, "
             "contrôle, estime la rotation et écrit `parc.csv`, `rotation.csv` et l'instance de départ.", "",
             "| lignes | format | fichier Mo | communes | cellules de rotation | lignes de parc.csv | lecture s "
             "| rotation s | import complet s |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['lignes']:,} | {r['format']} | {r['mo']} | {r['communes']} | {r['cellules']} | {r['parc']:,} | "
                     f"{r['lecture_s']:.2f} | {r['rotation_s']:.2f} | {r['total_s']:.2f} |".replace(",", " ").replace(".", ","))
    lines.append("<!-- fin rpls -->")
    block = "\n".join(lines)
    print(block)
    replace_block(args.sortie, block, BEGIN, END)


if __name__ == "__main__":
    main()
