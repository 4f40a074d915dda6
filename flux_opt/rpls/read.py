"""Read an RPLS extract (one line per dwelling) into a checked table of dwellings, vectorised.

The file is a CSV in any dialect an instance file may be (UTF-8 or Windows-1252, `,` or `;`: the
instance reader's decoding and separator rules, input/csvfile.py) or an .xlsx workbook (first sheet).
Columns are matched case-insensitively (columns.SPELLINGS); other RPLS columns are left aside.
Nothing is dropped silently: every line set aside or read with a fallback is counted in the report
with its first lines. InvalidInput (exit 2) only when the file cannot be used: unreadable, empty,
a required column missing (with the closest header as a hint), no dwelling left.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from flux_opt.errors import InputProblem, InvalidInput
from flux_opt.input.csvfile import decode, separator
from flux_opt.input.schema import closest
from flux_opt.input.xlsx import _cell_text
from flux_opt.rpls import columns as C

_COMMUNE = r"^(\d{5}|2[AB]\d{3})$"
_EPCI = r"^\d{9}$"
SHOWN_LINES = 5


@dataclass
class Extract:
    """The dwellings kept (one row each, with `ligne`, the line in the file), what was found and said."""

    source: str
    dwellings: pd.DataFrame
    departement: str
    fields: dict[str, str]  # field -> header as written in the file
    lines: int  # dwellings lines read
    report: list[InputProblem] = field(default_factory=list)  # lines set aside or read with a fallback
    notes: list[str] = field(default_factory=list)  # what was inferred (département, year)


def read_rpls(path: str | Path, departement: str | None = None) -> Extract:
    """Read and check an RPLS extract (see the module docstring); raise InvalidInput if unusable."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput([InputProblem(str(path), None, None, "fichier introuvable")])
    raw, lines = _read_xlsx(path) if path.suffix.lower() in (".xlsx", ".xlsm") else _read_csv(path)
    fields = _match_columns(path.name, list(raw.columns))
    if raw.empty:
        raise InvalidInput([InputProblem(path.name, None, None, "aucune ligne de logement après l'en-tête")])
    table = pd.DataFrame({f: by_value(raw[header].astype(str), lambda u: u.str.strip()) for f, header in fields.items()})
    table["ligne"] = lines
    return _check(path.name, table, fields, departement)


def by_value(series: pd.Series, convert):
    """`convert` (vectorised, returning a Series or a tuple of Series) run on the distinct values only, then
    spread back: an RPLS column of 400 000 lines holds a few hundred distinct codes or months."""
    codes, uniques = pd.factorize(series, use_na_sentinel=False)
    out = convert(pd.Series(uniques, dtype=object))
    spread = lambda u: pd.Series(u.to_numpy()[codes], index=series.index)  # noqa: E731
    return tuple(spread(u) for u in out) if isinstance(out, tuple) else spread(out)


# --------------------------------------------------------------------------- files


def _read_csv(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput([InputProblem(path.name, None, None, f"fichier illisible ({exc.strerror})")]) from exc
    text = decode(data, path.name)
    rows = text.splitlines()
    first = next((i for i, line in enumerate(rows) if line.strip()), None)
    if first is None:
        raise InvalidInput([InputProblem(path.name, None, None, "fichier vide : l'en-tête manque")])
    sep = separator(rows[first], path.name)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, skiprows=first,
                            skip_blank_lines=False, engine="c")
    except pd.errors.ParserError as exc:  # "Expected 13 fields in line 5, saw 14"
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        line, message = ((int(found[2]) + first, f"{found[3]} cellules pour {found[1]} colonnes : vérifier le "
                          "séparateur (une virgule décimale doit être entre guillemets dans un fichier séparé par "
                          "des virgules)") if found else (None, f"ligne illisible ({exc}) : vérifier le séparateur "
                                                                "et les guillemets"))
        raise InvalidInput([InputProblem(path.name, line, None, message)]) from exc
    frame = frame.fillna("")  # a line with fewer cells than the header
    frame.columns = [str(c).strip() for c in frame.columns]
    lines = np.arange(len(frame)) + first + 2
    keep = np.zeros(len(frame), dtype=bool)
    for column in frame.columns:
        keep |= frame[column].to_numpy(dtype=object) != ""
    return frame.loc[keep].reset_index(drop=True), lines[keep]


def _read_xlsx(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """The first sheet's values through calamine (Rust: 400 000 lines in seconds, where openpyxl takes
    minutes); formulas are looked for only when the workbook holds some."""
    from python_calamine import CalamineWorkbook  # lazy: the Rust reader is loaded for a workbook only

    try:
        rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python(skip_empty_area=False)
    except Exception as exc:  # calamine raises its own types for a corrupt file
        raise InvalidInput([InputProblem(path.name, None, None, f"classeur illisible ({exc})")]) from exc
    if not rows or not any(c not in (None, "") for c in rows[0]):
        raise InvalidInput([InputProblem(path.name, None, None, "classeur vide : l'en-tête manque")])
    names = [_cell_text(c) for c in rows[0]]
    raw = pd.DataFrame(rows[1:], dtype=object).reindex(columns=range(len(names))).fillna("")
    frame = pd.DataFrame({name: by_value(raw[i], lambda u, w=_code_width(name): u.map(lambda v: _xlsx_cell(v, w)))
                          for i, name in enumerate(names) if name})
    keep = np.zeros(len(frame), dtype=bool)
    for column in frame.columns:
        keep |= frame[column].to_numpy(dtype=object) != ""
    lines = np.arange(len(frame))[keep] + 2
    frame = frame.loc[keep].reset_index(drop=True)
    if _has_formulas(path):
        _formulas(path, frame, lines)
    return frame, lines


def _code_width(name: str) -> int | None:
    """Excel stores a commune code typed as a number without its leading zero: pad it back."""
    low = name.strip().lower()
    return 5 if low in C.SPELLINGS["commune"] else 9 if low in C.SPELLINGS["epci"] else None


def _xlsx_cell(value, width: int | None) -> str:
    if value == "":
        return ""
    if width and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(int(value)).zfill(width)
    return _cell_text(value)


def _has_formulas(path: Path) -> bool:
    """Whether a worksheet of the workbook holds a formula (an <f> element), read as a stream."""
    found = re.compile(rb"<f[ >/]")
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                    with archive.open(name) as stream:
                        tail = b""
                        while chunk := stream.read(1 << 20):
                            if found.search(tail + chunk):
                                return True
                            tail = chunk[-8:]
    except zipfile.BadZipFile:
        return False
    return False


def _formulas(path: Path, frame: pd.DataFrame, lines: np.ndarray) -> None:
    """A formula whose value Excel never saved reads as blank: name it rather than read it as empty."""
    from openpyxl import load_workbook  # lazy: only for a workbook that holds formulas

    used = [c for c in frame.columns if c.strip().lower() in {s for v in C.SPELLINGS.values() for s in v}]
    blank = {(int(line), c) for c in used for line in lines[(frame[c] == "").to_numpy()]}
    if not blank:
        return
    book = load_workbook(path, read_only=True, data_only=False)
    header = [_cell_text(c) for c in next(book.worksheets[0].iter_rows(values_only=True))]
    where = {header.index(c): c for c in used}
    found: list[tuple[int, str]] = []
    for number, row in enumerate(book.worksheets[0].iter_rows(min_row=2, values_only=True), start=2):
        for i, name in where.items():
            if i < len(row) and isinstance(row[i], str) and row[i].startswith("=") and (number, name) in blank:
                found.append((number, name))
    book.close()
    if found:
        (line, name), count = found[0], len(found)
        raise InvalidInput([InputProblem(path.name, line, name, f"{count} cellule(s) calculée(s) par une formule dont "
                                         "la valeur n'est pas enregistrée dans le classeur : ouvrir et enregistrer "
                                         "dans Excel, ou coller les valeurs à la place des formules")])


# --------------------------------------------------------------------------- columns


def _match_columns(name: str, headers: list[str]) -> dict[str, str]:
    """field -> header, case-insensitively; a missing required column is an error with the closest header."""
    low = {h.strip().lower(): h for h in headers}
    fields = {}
    for f, spellings in C.SPELLINGS.items():
        found = next((low[s] for s in spellings if s in low), None)
        if found is not None:
            fields[f] = found
    known = [s for v in C.SPELLINGS.values() for s in v]
    unmatched = [h for h in headers if h.strip().lower() not in known]
    problems = []
    missing = [f for f in C.REQUIRED if f not in fields]
    missing += [" ou ".join(group) for group in C.ONE_OF if not any(g in fields for g in group)]
    for f in missing:
        spellings = [s for g in f.split(" ou ") for s in C.SPELLINGS[g]]
        hint = _closest_header(unmatched, spellings)
        label = " ou ".join(C.LABELS[g] for g in f.split(" ou "))
        accepted = " ou ".join(f"« {s} »" for s in spellings)
        problems.append(InputProblem(name, 1, f.split(" ou ")[0], f"colonne obligatoire absente ({label}) : "
                                     f"attendu {accepted}, majuscules ou minuscules"
                                     + (f" ; « {hint[0]} » → {hint[1]} ?" if hint else "")))
    for f in ("bail", "construct", "mode", "locat", "commune_nom", "epci_nom"):
        if f not in fields:
            hint = _closest_header(unmatched, list(C.SPELLINGS[f]))
            if hint:
                problems.append(InputProblem(name, 1, hint[0], f"colonne inconnue : « {hint[0]} » → {hint[1]} ? "
                                             "(renommer l'en-tête, sinon ses valeurs seraient ignorées)"))
    if problems:
        raise InvalidInput(problems)
    return fields


def _closest_header(headers: list[str], spellings: list[str]) -> tuple[str, str] | None:
    for header in headers:
        guess = closest(header, spellings)
        if guess:
            return header, guess
    return None


# --------------------------------------------------------------------------- values


class _Report:
    def __init__(self, source: str, table: pd.DataFrame):
        self.source, self.table, self.problems = source, table, []

    def add(self, mask: pd.Series, field: str, message: str, table: pd.DataFrame | None = None) -> None:
        """One line of the report for every line in `mask` (of `table`, the file's by default): their
        count and first lines."""
        count = int(mask.sum())
        if not count:
            return
        lines = (self.table if table is None else table)["ligne"].to_numpy()[mask.to_numpy()][:SHOWN_LINES]
        more = "…" if count > SHOWN_LINES else ""
        where = ", ".join(str(int(x)) for x in lines) + more
        self.problems.append(InputProblem(self.source, int(lines[0]), field,
                                          f"{message} — {count} ligne{'s' if count > 1 else ''} ({where})"))


def _check(source: str, t: pd.DataFrame, fields: dict[str, str], departement: str | None) -> Extract:
    report = _Report(source, t)
    notes = []
    total = len(t)
    head = lambda f: fields[f]  # noqa: E731 - the header as the user wrote it

    commune = by_value(t["commune"], lambda u: u.where(~u.str.fullmatch(r"\d{4}"), "0" + u))
    bad_commune = ~by_value(commune, lambda u: u.str.fullmatch(_COMMUNE))
    report.add(bad_commune, head("commune"), "code commune invalide (5 caractères : 59350, 2A004) : logement écarté")
    t["commune"] = commune
    epci = t["epci"]
    bad_epci = ~bad_commune & ~by_value(epci, lambda u: u.str.fullmatch(_EPCI))
    report.add(bad_epci, head("epci"), "SIREN d'EPCI invalide (9 chiffres) : logement écarté")
    prefix = by_value(commune, lambda u: u.str[:3].where(u.str.startswith("97"), u.str[:2]))
    if departement is None:
        departement = prefix[~bad_commune].mode().iat[0] if (~bad_commune).any() else ""
        if departement:
            notes.append(f"département {departement} : celui de la plupart des logements (--departement pour "
                         "en choisir un autre)")
    departement = departement.strip().upper().zfill(2)
    outside = ~bad_commune & (prefix != departement) & (prefix.str[:2] != departement)
    if outside.any():
        others = ", ".join(sorted(set(prefix[outside]))[:5])
        report.add(outside, head("commune"), f"logement hors du département {departement} (départements {others}) : "
                                             "écarté (une instance par département)")

    typo, bad_rooms = by_value(t["nbpiece"], C.typologie)
    report.add(bad_rooms & ~bad_commune, head("nbpiece"), "nombre de pièces invalide (entier de 1 à 9) : logement écarté")
    t["typologie"] = typo

    qpv = t["qpv"]
    low = by_value(qpv, lambda u: u.str.lower())
    outside_qpv = low.isin(["", "0", "non", "false", "faux"])
    code = by_value(low, lambda u: u.str.fullmatch(r"q[a-z0-9]{6,10}"))  # QP059001, QN05921M…
    inside_qpv = code | low.isin(["oui", "1", "true", "vrai"])
    bad_qpv = ~outside_qpv & ~inside_qpv
    report.add(bad_qpv, head("qpv"), "valeur QPV non reconnue (code QP… du quartier, vide ou 0 hors QPV) : "
                                     "logement écarté")
    t["qpv"] = inside_qpv

    t["financement"] = _financement(t, fields, report)

    if "construct" in fields:
        t["periode_construction"], bad_year = by_value(t["construct"], C.periode)
        report.add(bad_year, head("construct"), "année de construction illisible : période laissée vide")
    else:
        t["periode_construction"] = ""
    if "bail" in fields:
        t["bail"], bad_date = by_value(t["bail"], C.lease_dates)
        t["bail"] = pd.to_datetime(t["bail"])
        report.add(bad_date, head("bail"), "date de bail illisible (attendu MM/AAAA, JJ/MM/AAAA ou AAAA-MM-JJ) : "
                                           "logement gardé dans le parc, hors du calcul de la rotation")
        t["bail_illisible"] = bad_date
    if "mode" in fields:
        mode = by_value(t["mode"], lambda u: u.str.replace(r"\.0+$", "", regex=True))
        bad_mode = (mode != "") & ~mode.isin(C.MODES)
        report.add(bad_mode, head("mode"), "mode d'occupation inconnu (1 à 5 ou 9) : logement compté comme proposé "
                                           "à la location")
        t["mode"] = mode.where(~bad_mode, "")
        empty = t["mode"] == C.EMPTY
        report.add(empty & ~bad_commune & ~outside, head("mode"), "logement vide (travaux, vente ou démolition, "
                   "mode 3) : hors du parc qui se libère")
    else:
        empty = pd.Series(False, index=t.index)
    if "locat" in fields:
        locat = pd.to_numeric(by_value(t["locat"], lambda u: pd.to_numeric(u, errors="coerce")))
        bad_locat = (t["locat"] != "") & (locat.isna() | (locat < 1800) | (locat > 2100))
        report.add(bad_locat, head("locat"), "année de première mise en location illisible : logement compté comme "
                                             "en location depuis plus d'un an")
        t["locat"] = locat.where(~bad_locat)
    for f in ("commune_nom", "epci_nom"):
        if f not in t:
            t[f] = ""

    dropped = bad_commune | bad_epci | outside | bad_rooms | bad_qpv | empty
    kept = t.loc[~dropped].reset_index(drop=True)
    if kept.empty:
        raise InvalidInput(report.problems + [InputProblem(source, None, None, f"aucun logement utilisable sur {total} "
                                                           f"lignes (département {departement})")])
    _one_epci_per_commune(kept, report, head("epci"))
    return Extract(source, kept, departement, fields, total, report.problems, notes)


def _financement(t: pd.DataFrame, fields: dict[str, str], report: _Report) -> pd.Series:
    """FINAN codes through the documented table (columns.FINAN); unknown codes -> autre, reported;
    finan_libelle where there is no code."""
    by_label = (by_value(t["finan_libelle"], C.financement_from_label) if "finan_libelle" in fields
                else pd.Series("autre", index=t.index, dtype=object))
    if "finan" not in fields:
        report.add(t["finan_libelle"] == "", fields["finan_libelle"], "financement vide : compté « autre »")
        return by_label
    code = by_value(t["finan"], C.finan_code)
    table = {k: v[0] for k, v in C.FINAN.items()}
    mapped = code.map(table)
    blank = code == ""
    unknown = ~blank & mapped.isna()
    for value in sorted(set(code[unknown]))[:10]:
        report.add(unknown & (code == value), fields["finan"],
                   f"code FINAN « {value} » inconnu (table des codes : docs/donnees.md) : compté « autre »")
    no_label = blank & (t["finan_libelle"] == "") if "finan_libelle" in fields else blank
    report.add(no_label, fields["finan"], "financement vide : compté « autre »")
    return mapped.where(~blank, by_label).fillna("autre")


def _one_epci_per_commune(t: pd.DataFrame, report: _Report, header: str) -> None:
    """A commune belongs to one EPCI: lines that say otherwise take the commune's most common EPCI."""
    counts = t.groupby(["commune", "epci"]).size().rename("n").reset_index()
    main = counts.sort_values(["commune", "n"], ascending=[True, False]).drop_duplicates("commune")
    owner = t["commune"].map(main.set_index("commune")["epci"])
    wrong = t["epci"] != owner
    if wrong.any():
        report.add(wrong, header, "EPCI différent de celui des autres logements de la commune : celui de la "
                                  "majorité est gardé", t)
        t.loc[wrong, "epci"] = owner[wrong]
