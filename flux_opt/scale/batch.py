"""Plan every instance of a folder (or of a generated national set), resumable, in parallel.

Layout of the output folder SORTIE:

- ``SORTIE/<instance>/`` the plan files, report and explanation (``report.outputs.write_run``) plus ``synthese.json``, the
  instance's line of the summary with the fingerprint (``empreinte``) of its input files
  and options and the seconds of each phase (``phases``); ``synthese.json`` is written after
  the plan folder, so a folder whose ``synthese.json`` has the current fingerprint holds a
  finished plan. An invalid instance, or one whose worker crashed, gets only
  ``synthese.json``: it is recorded, not re-run — unless its files or the options changed
  (then the fingerprint differs and the instance is planned again).
- ``SORTIE/synthese.csv`` one line per instance, appended (flush + fsync) as
  each instance finishes: an interruption loses no finished result.
- ``SORTIE/synthese_nationale.csv`` aggregates per département and overall; ``synthese.html`` and
  ``synthese.xlsx`` are its pages for people (flux_opt/scale/departement.py).
- ``SORTIE/departements/<code>/`` the State's view of each département, its bailleurs added up.

Workers (local processes, or a Dask cluster whose workers see SORTIE) return
only the small summary dict, never a plan: memory stays bounded whatever the
number of instances.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import socket
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from flux_opt import __version__
from flux_opt.phases import Phases
from flux_opt.scale.pool import Crash, run_tasks
from flux_opt import pipeline
from flux_opt.errors import InvalidInput
from flux_opt.model.solve import NoSolutionFound
from flux_opt.report.exports import write_atomically, write_csv, write_json
from flux_opt.report.lot import departement_html, departement_workbook, national_html, national_workbook
from flux_opt.report.outputs import write_run
from flux_opt.scale.departement import (COLLECTIVITES, CONTINGENT, DEPARTEMENTS, departement_view, etat_share,
                                        instance_collectivites, instance_contingent, national_view, violated_causes)

# A machine file: list fields (`regles_violees`) are joined by ";" without spaces, rule ids exactly
# as in contraintes.csv (`contrainte`).
SYNTHESE_COLUMNS = ["instance", "bailleur", "bailleur_nom", "departement", "flux", "adequation", "part_etat", "statut",
                    "ecart", "code", "regles_violees", "secondes", "message"]
LIST_SEPARATOR = ";"
SYNTHESE = "synthese.csv"
NATIONALE = "synthese_nationale.csv"
MARKER = "synthese.json"
CODE_INVALIDE = 2
CODE_SANS_SOLUTION = 4
CODE_ERREUR = 1


@dataclass(frozen=True)
class InstanceRef:
    nom: str
    chemin: Path
    bailleur: str = ""
    departement: str = ""


@dataclass
class BatchReport:
    planifiees: list[str] = field(default_factory=list)  # instances run by this call
    reprises: list[str] = field(default_factory=list)  # instances already done, skipped
    codes: dict[str, int] = field(default_factory=dict)  # every instance of the folder → its code
    secondes: float = 0.0


# ---------------------------------------------------------------------------- discovery


def find_instances(dossier: Path) -> list[InstanceRef]:
    """The instances of `dossier`: the rows of `manifeste.csv` if present (national set),
    else every sub-folder holding an `instance.toml` and every `.xlsx` workbook, in name order."""
    dossier = Path(dossier)
    manifest = dossier / "manifeste.csv"
    if manifest.is_file():
        rows = pd.read_csv(manifest, dtype=str, keep_default_na=False)
        return [InstanceRef(r.instance, dossier / r.instance, r.bailleur, r.departement)
                for r in rows.itertuples()]
    folders = [p.parent for p in dossier.glob("*/instance.toml")]
    workbooks = [p for p in dossier.glob("*.xlsx") if not p.name.startswith("~$")]  # ~$: Excel's lock file
    found = sorted(folders + workbooks, key=lambda p: p.name)
    names = _distinct_names([p.stem if p.is_file() else p.name for p in found], found)
    return [InstanceRef(name, p, *_bailleur_departement(p)) for name, p in zip(names, found)]


def _distinct_names(names: list[str], paths: list[Path]) -> list[str]:
    """One output folder per instance: a workbook `ex.xlsx` beside a folder `ex/` (or `EX/` on a
    disk that ignores case) gets `ex_xlsx`, then `ex_xlsx_2`… (renamed_note says so)."""
    taken = {n.casefold() for n, p in zip(names, paths) if p.is_dir()}
    out = []
    for name, path in zip(names, paths):
        if path.is_file():
            base = name if name.casefold() not in taken else path.name.replace(".", "_")
            name, k = base, 2
            while name.casefold() in taken:
                name, k = f"{base}_{k}", k + 1
            taken.add(name.casefold())
        out.append(name)
    return out


def renamed_note(refs: list[InstanceRef]) -> list[str]:
    """The French line of each workbook whose results folder is not its plain name."""
    return [f"{r.chemin.name} : résultats dans « {r.nom} » (un autre dossier d'instance porte le nom "
            f"« {r.chemin.stem} »)." for r in refs if r.chemin.is_file() and r.nom != r.chemin.stem]


def fingerprint(chemin: Path, moteur: str, analyse: bool = True, couts: bool = False) -> str:
    """What a finished result depends on: the bytes of the instance's files, the options that change
    the outputs (the engine; the report and explanation or the plan files only), the version."""
    chemin = Path(chemin)
    files = sorted(f for f in chemin.iterdir() if f.suffix in (".csv", ".toml")) if chemin.is_dir() else [chemin]
    outputs = ("analyse" + ("+couts" if couts else "")) if analyse else "sans-analyse"
    digest = hashlib.sha256(f"{moteur}|{outputs}|{__version__}".encode())
    for file in files:
        digest.update(file.name.encode() + b"\0")
        try:
            digest.update(file.read_bytes())
        except OSError:
            digest.update(b"illisible")
    return digest.hexdigest()[:16]


def _bailleur_departement(folder: Path) -> tuple[str, str]:
    """From instance.toml, so that even an invalid instance is counted in its département."""
    if folder.is_file():
        return "", ""  # a workbook: known once planned (from its resume.json)
    try:
        with open(folder / "instance.toml", "rb") as f:
            head = tomllib.load(f).get("instance", {})
        return str(head.get("bailleur", "")), str(head.get("departement", ""))
    except (OSError, tomllib.TOMLDecodeError):
        return "", ""


# ---------------------------------------------------------------------------- one instance


def plan_one(chemin: str, dossier_sortie: str, moteur: str = "highs", bailleur: str = "",
             departement: str = "", empreinte: str = "", analyse: bool = True, couts: bool = False) -> dict:
    """Plan one instance and write its files — with `analyse`, the report and explanation too, as
    `flux-opt plan` does, with the rule costs (re-solves) only if `couts` —, and its part of the
    département's view; return its summary line (runs in a worker). Errors are summary lines too
    (code 2 invalid data, 4 no plan found, 1 internal error)."""
    folder = Path(dossier_sortie)
    line = empty_line(folder.name, bailleur, departement, empreinte)
    start, cpu_start = time.perf_counter(), time.process_time()
    phases = Phases()
    try:
        done = pipeline.run_path(chemin, pipeline.PlanOptions(engine=moteur, analysis=analyse, rule_costs=couts,
                                                              conformity=analyse), phases=phases)
        result = done.result
    except InvalidInput as exc:
        line.update(statut="donnees_invalides", code=CODE_INVALIDE,
                    message=" | ".join(str(p) for p in exc.problems))
    except NoSolutionFound as exc:
        line.update(statut=f"sans_solution ({exc})", code=CODE_SANS_SOLUTION,
                    message="Le solveur n'a trouvé aucun plan : augmenter [solveur] temps_max_s.")
    except Exception as exc:  # noqa: BLE001 - one bad instance must not stop a national batch
        line.update(statut="erreur", code=CODE_ERREUR, message=f"Erreur interne ({type(exc).__name__} : {exc})")
    else:
        r = result.resume
        contingent, collectivites = instance_contingent(done), instance_collectivites(done)
        line.update(bailleur=bailleur or r["bailleur"], bailleur_nom=r["bailleur"],
                    departement=departement or r["departement"], flux=r["flux"], adequation=r["adequation"],
                    part_etat=etat_share(contingent), statut=r["statut_solveur"], ecart=r["ecart_optimalite"],
                    code=result.exit_code, regles_violees=LIST_SEPARATOR.join(r["regles_violees"]),
                    message=" | ".join(r.get("avertissements", [])), causes=violated_causes(done))
    if line["code"] in (0, 3):
        write_run(done, folder, phases=phases, extra={CONTINGENT: lambda p: write_csv(contingent, p),
                                                     COLLECTIVITES: lambda p: write_csv(collectivites, p)})
    line["secondes"] = round(time.perf_counter() - start, 3)
    line["phases"] = {name: round(seconds, 3) for name, seconds in phases.seconds.items()}
    line["phases_cpu"] = {name: round(seconds, 3) for name, seconds in phases.cpu.items()}
    line["cpu_s"] = round(time.process_time() - cpu_start, 3)
    line["memoire_mo"] = peak_memory_mb()
    line["processus"] = f"{socket.gethostname()}:{os.getpid()}"  # which worker (per-worker figures)
    write_atomically(folder, {MARKER: lambda p: write_json(line, p)})  # last: it marks the instance done
    return line


def peak_memory_mb() -> float | None:
    """Peak resident memory of this worker process so far (MB), None where the OS does not tell."""
    try:
        import resource  # lazy: Unix only (the ImportError below)
    except ImportError:  # Windows
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # kB on Linux


def empty_line(instance: str, bailleur: str, departement: str, empreinte: str) -> dict:
    return {"instance": instance, "bailleur": bailleur, "bailleur_nom": "", "departement": departement, "flux": "",
            "adequation": "", "part_etat": "", "statut": "", "ecart": "", "code": 0, "regles_violees": "", "secondes": 0.0, "message": "",
            "empreinte": empreinte}


def crashed_line(args: tuple, crash: Crash) -> dict:
    """The line of an instance whose worker died, recorded so that a rerun does not crash again."""
    chemin, dossier_sortie, _, bailleur, departement, empreinte, *_ = args
    line = empty_line(Path(dossier_sortie).name, bailleur, departement, empreinte)
    line.update(statut="plantage", code=CODE_ERREUR, message=crash.message)
    write_atomically(Path(dossier_sortie), {MARKER: lambda p: write_json(line, p)})
    return line


def finished_line(folder: Path, empreinte: str) -> dict | None:
    """The recorded summary line of a finished instance folder whose input and options are
    those of `empreinte`, else None (to be run)."""
    try:
        line = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if line.get("empreinte") != empreinte:
        return None
    planned = (folder / "resume.json").is_file() and (folder / CONTINGENT).is_file()
    return line if line.get("code") not in (0, 3) or planned else None


# ---------------------------------------------------------------------------- the batch


def run_batch(dossier: Path, sortie: Path, processes: int = 2, cluster: str | None = None,
              resume_finished: bool = True, limit: int | None = None, moteur: str = "highs", analyse: bool = True,
              couts: bool = False,
              on_start: Callable[[int, int], None] | None = None,
              on_result: Callable[[dict], None] | None = None) -> BatchReport:
    """Plan every instance of `dossier` into `sortie`. `on_start(todo, skipped)` and
    `on_result(line)` let the caller show progress. `limite`: at most that many new instances.
    `analyse`: each plan folder gets the report and explanation (False: plan files only, faster);
    `couts`: with the rule costs (one re-solve per rule costed; the report says when they are not)."""
    start = time.perf_counter()
    sortie = Path(sortie)
    sortie.mkdir(parents=True, exist_ok=True)
    refs = find_instances(dossier)
    report = BatchReport()
    prints = {ref.nom: fingerprint(ref.chemin, moteur, analyse, couts) for ref in refs}
    done = {ref.nom: finished_line(sortie / ref.nom, prints[ref.nom]) for ref in refs} if resume_finished else {}
    done = {k: v for k, v in done.items() if v is not None}
    _rewrite_synthese(sortie / SYNTHESE, [done[r.nom] for r in refs if r.nom in done])
    report.reprises = [r.nom for r in refs if r.nom in done]
    report.codes = {nom: int(line["code"]) for nom, line in done.items()}
    todo = [r for r in refs if r.nom not in done][:limit]
    if on_start:
        on_start(len(todo), len(done))
    for line in _execute(todo, sortie, processes, cluster, moteur, prints, analyse, couts):
        _append_line(sortie / SYNTHESE, line)
        report.planifiees.append(line["instance"])
        report.codes[line["instance"]] = int(line["code"])
        if on_result:
            on_result(line)
    write_national_summary(sortie, processes)
    report.secondes = time.perf_counter() - start
    return report


def _execute(todo: list[InstanceRef], sortie: Path, processes: int, cluster: str | None,
             moteur: str, prints: dict[str, str], analyse: bool = True, couts: bool = False) -> Iterator[dict]:
    """Summary lines as instances finish. Local work always runs in worker processes, even
    with `processus` = 1: an instance that crashes its worker (a native crash) is then
    recorded as failed and the batch goes on."""
    # Largest first: the last instances to finish are then small ones, and no process waits alone
    # on a large instance started last (national set: the largest takes 20 s, the median 1 s).
    todo = sorted(todo, key=_size, reverse=True)
    args = [(str(r.chemin.resolve()), str((sortie / r.nom).resolve()), moteur, r.bailleur, r.departement,
             prints[r.nom], analyse, couts) for r in todo]
    if not args:
        return
    if cluster:
        yield from _on_dask(args, cluster)
        return
    for index, line in run_tasks(plan_one, args, processes):
        yield crashed_line(args[index], line) if isinstance(line, Crash) else line


def _size(ref: InstanceRef) -> int:
    """How large an instance is, read without opening it: the bytes of its files (a folder of CSV
    files or one workbook)."""
    files = [p for p in ref.chemin.iterdir() if p.is_file()] if ref.chemin.is_dir() else [ref.chemin]
    return sum(p.stat().st_size for p in files if p.exists())


class ClusterUnreachable(Exception):
    """No Dask scheduler answers at the address given to `lot --cluster`."""


CLUSTER_TIMEOUT_S = 20


def _on_dask(args: list[tuple], address: str) -> Iterator[dict]:
    """The same tasks on a Dask cluster (`dask scheduler` + `dask worker` processes that see the
    instance folders and SORTIE). A task whose workers keep dying is recorded as a crash."""
    from dask.distributed import Client, as_completed as dask_completed  # lazy: dask only with --cluster

    try:
        client = Client(address, timeout=f"{CLUSTER_TIMEOUT_S}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterUnreachable(f"aucun ordonnanceur Dask ne répond à l'adresse « {address} » "
                                 f"en {CLUSTER_TIMEOUT_S} s ({type(exc).__name__})") from exc
    with client:
        futures = client.map(plan_one, *zip(*args), pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        for future in dask_completed(futures):
            try:
                line = future.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker and the like: this instance only
                line = crashed_line(args[index[future.key]], Crash(f"{Crash.message} ({type(exc).__name__})"))
            future.release()  # the cluster forgets the line once we have it
            yield line


# ---------------------------------------------------------------------------- summary files


def _append_line(path: Path, line: dict) -> None:
    """Append one line durably: once this returns, an interruption cannot lose it."""
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, SYNTHESE_COLUMNS, extrasaction="ignore", lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerow(line)
        f.flush()
        os.fsync(f.fileno())


def _rewrite_synthese(path: Path, lines: list[dict]) -> None:
    """Start synthese.csv again from the finished instances only (one line each, folder order)."""
    staging = path.with_suffix(".csv.tmp")
    with open(staging, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, SYNTHESE_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(lines)
        f.flush()
        os.fsync(f.fileno())
    os.replace(staging, path)


def read_synthese(sortie: Path) -> pd.DataFrame:
    return pd.read_csv(Path(sortie) / SYNTHESE, dtype=str, keep_default_na=False)


def national_summary(synthese: pd.DataFrame) -> pd.DataFrame:
    """Per département and overall (`ensemble`): instances, flux, attributions expected,
    fit (attributions ÷ flux), instances per exit code, seconds."""
    s = synthese.copy()
    s["flux"] = pd.to_numeric(s["flux"], errors="coerce").fillna(0)
    s["attributions"] = pd.to_numeric(s["adequation"], errors="coerce").fillna(0) * s["flux"]
    s["code"] = pd.to_numeric(s["code"], errors="coerce").fillna(CODE_ERREUR).astype(int)
    s["secondes"] = pd.to_numeric(s["secondes"], errors="coerce").fillna(0)

    def aggregate(group: pd.DataFrame) -> dict:
        flux = int(group["flux"].sum())
        attributions = float(group["attributions"].sum())
        return {"instances": len(group), "flux": flux, "attributions_prevues": round(attributions, 1),
                "adequation": round(attributions / flux, 4) if flux else 0.0,
                "conformes": int((group["code"] == 0).sum()), "regles_violees": int((group["code"] == 3).sum()),
                "invalides": int((group["code"] == CODE_INVALIDE).sum()),
                "echecs": int((~group["code"].isin([0, 3, CODE_INVALIDE])).sum()),
                "secondes": round(float(group["secondes"].sum()), 1)}

    rows = [{"departement": dep, **aggregate(g)} for dep, g in s.groupby("departement", sort=True)]
    rows.append({"departement": "ensemble", **aggregate(s)})
    return pd.DataFrame(rows)


def write_national_summary(sortie: Path, processes: int = 1) -> pd.DataFrame:
    """synthese_nationale.csv, its pages for people (synthese.html, synthese.xlsx) and the view of
    each département (departements/<code>/), the départements on `processes` worker processes."""
    synthese = read_synthese(sortie)
    table = national_summary(synthese)
    view = national_view(sortie, synthese, table)
    write_atomically(Path(sortie), {NATIONALE: lambda p: write_csv(table, p),
                                    "synthese.html": lambda p: p.write_text(national_html(view), encoding="utf-8"),
                                    "synthese.xlsx": lambda p: p.write_bytes(national_workbook(view))})
    write_departements(sortie, synthese, processes)
    return table


def write_departements(sortie: Path, synthese: pd.DataFrame, processes: int = 1) -> list[str]:
    """`SORTIE/departements/<code>/`: the three CSV files and the page and workbook of each
    département of `synthese` (its rows of synthese.csv). Returns the codes written. Each view
    reads only its own bailleurs' plans: with `processes` > 1 they are written in parallel after
    the batch (national set, 100 départements: about 14 s of CPU that no instance overlaps)."""
    tasks = [(str(sortie), code, lines) for code, lines in synthese.groupby("departement", sort=True) if code]
    if processes > 1 and len(tasks) > 1:
        for index, outcome in run_tasks(write_departement, tasks, processes):
            if isinstance(outcome, Crash):  # its worker died: written here, where an error shows itself
                write_departement(*tasks[index])
    else:
        for task in tasks:
            write_departement(*task)
    return [code for _, code, _ in tasks]


def write_departement(sortie: str, code: str, lines: pd.DataFrame) -> None:
    """`SORTIE/departements/<code>/` for one département (runs in a worker)."""
    view = departement_view(code, lines, Path(sortie))
    write_atomically(Path(sortie) / DEPARTEMENTS / _folder_name(code), {
        "bailleurs.csv": lambda p: write_csv(view.bailleurs, p),
        "communes.csv": lambda p: write_csv(view.communes, p),
        "collectivites.csv": lambda p: write_csv(view.collectivites, p),
        "contingent.html": lambda p: p.write_text(departement_html(view), encoding="utf-8"),
        "contingent.xlsx": lambda p: p.write_bytes(departement_workbook(view)),
    })


def _folder_name(code: str) -> str:
    """A département code as a folder name (codes are digits and letters: 59, 2A, 971)."""
    return re.sub(r"[^0-9A-Za-z]", "_", str(code))
