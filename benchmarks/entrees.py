"""How fast and how lean `flux-opt verifier` checks a large input: a 50 MB parc.csv of distinct
segments (accepted) and 50 MB of duplicate rows (refused), each run as a user runs it, in its own
process: wall time and peak memory (max RSS).

    .venv/bin/python benchmarks/entrees.py --mo 50 [--dossier /tmp/entrees]

The instances are the example with its parc.csv grown to the size asked by copies of its rows:
for the accepted one each copy gets its own periode_construction (« 1975-1999 (tranche 7) »), so
every segment stays distinct; the refused one repeats the example's rows as they are. The table is
printed and written between markers in benchmarks/resultats.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
EXEMPLE = ROOT / "instances" / "exemple"
BEGIN, END = "<!-- debut entrees -->", "<!-- fin entrees -->"
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import replace_block  # noqa: E402  (benchmarks/run.py, beside this script)


def grown_instance(folder: Path, megabytes: float, duplicates: bool) -> tuple[int, float]:
    """The example with a parc.csv of about `megabytes` MB: (rows, size in MB)."""
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(EXEMPLE, folder)
    parc = pd.read_csv(EXEMPLE / "parc.csv", dtype=str, keep_default_na=False)
    per_row = len(parc.to_csv(index=False).encode()) / len(parc)
    copies = int(megabytes * 1e6 / per_row / len(parc)) + 1
    frames = [parc]
    for k in range(1, copies):
        copy = parc.copy()
        if not duplicates:  # the same dwellings built in another period: distinct segments
            copy["periode_construction"] = copy["periode_construction"] + f" (tranche {k})"
        frames.append(copy)
    big = pd.concat(frames, ignore_index=True)
    big.to_csv(folder / "parc.csv", index=False)
    return len(big), (folder / "parc.csv").stat().st_size / 1e6


def measure(folder: Path) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak memory MB, exit code) of `flux-opt verifier folder` in its own
    process (CPU time: the wall time of a machine shared with other work overstates the cost)."""
    command = [str(Path(sys.executable).parent / "flux-opt"), "verifier", str(folder)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="100")
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    return (time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
            os.waitstatus_to_exitcode(status))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mo", type=float, default=50.0, help="taille de parc.csv, en Mo")
    parser.add_argument("--dossier", type=Path, default=Path("/tmp/flux-opt-entrees"))
    parser.add_argument("--sans-ecrire", action="store_true", help="ne pas modifier benchmarks/resultats.md")
    args = parser.parse_args()
    rows = []
    for name, duplicates, expected in (("distinct", False, "acceptée"), ("doublons", True, "refusée")):
        lines, size = grown_instance(args.dossier / name, args.mo, duplicates)
        seconds, cpu, memory, code = measure(args.dossier / name)
        verdict = {0: "acceptée", 2: "refusée"}.get(code, f"code {code}")
        rows.append(f"| {name} | {size:,.1f} Mo | {lines:,} | {verdict}{'' if verdict == expected else ' (!)'} "
                    f"| {seconds:,.1f} s | {cpu:,.1f} s | {memory:,.0f} Mo |".replace(",", "\u202f").replace(".", ","))
    table = "\n".join([
        f"Commande : `python benchmarks/entrees.py --mo {args.mo:g}` ({os.cpu_count()} cœurs, "
        f"{time.strftime('%Y-%m-%d')}) : `flux-opt verifier` sur l'exemple dont parc.csv est agrandi.", "",
        "| parc.csv | taille | lignes | instance | temps (mur) | temps CPU | mémoire max (RSS) |",
        "|---|---|---|---|---|---|---|",
        *rows])
    print(table)
    if not args.sans_ecrire:
        replace_block(ROOT / "benchmarks" / "resultats.md", f"{BEGIN}\n{table}\n{END}", BEGIN, END)


if __name__ == "__main__":
    main()
