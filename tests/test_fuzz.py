"""Fuzz test (issue 14 point 6): mutate the example's files as people and tools damage them —
cells, headers, encodings, separators, rows, parameters — and check that every command answers
with exit 0, 2 or 3, never "Erreur interne" (exit 1) nor a signal, and that an instance it
accepts gives a plan the independent checker (tests/checker.py) accepts. The same for damaged
workbooks (cells, formulas, sheet names, the bytes of their XML parts) and for the negotiation
page's endpoints (any body, content type, token, Origin and Host: never a 500, a foreign Host or
Origin always 403, the instance never written).

The suite runs a fixed, derandomised set of examples (FUZZ_EXEMPLES, default 12); `make fuzz`
runs many more, randomly.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from checker import check_plan, violated_rows
from conftest import EXEMPLE

TABLES = ("parc", "exclusions", "reservataires", "demande", "objectifs", "mixite", "conventions")
NEVER_VIOLATED = {"conservation", "territoire", "demande", "integrite"}
CELLS = ["", " ", "0", "-1", "1e20", "inf", "nan", "NaN", "abc", "0,5", "1,5", "1.5.2", "2,000.5", "1 234",
         "oui", "non", "T6+", "T9", "2A004", "62041", "59350", "200093201", "prefet", "bailleur", "q1",
         "PLAI", '"', ";", ",", "é\u00e9\u20ac", "x" * 300, "\u00a0", "12", "0.999", "100000000"]
TOML_VALUES = ['"x"', "-1", "0", "1e999", "nan", "inf", "[1, 2]", "true", '"59"', "2027", "0.5", "= =", '"'
               , "{}", "99999999999999999999"]


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(path.read_text(encoding="utf-8").splitlines()))


def _write(path: Path, rows: list[list[str]], encoding="utf-8", delimiter=",") -> None:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding, errors="replace"))


@st.composite
def mutation(draw):
    """One damage to one file, as (description, function of the instance folder)."""
    table = draw(st.sampled_from(TABLES))
    kind = draw(st.sampled_from(["cell", "cell", "cell", "header", "drop_column", "encoding", "separator",
                                 "delete_row", "duplicate_row", "blank_rows", "extra_cells", "truncate",
                                 "toml", "remove_file"]))
    pick = draw(st.integers(0, 10**6))
    value = draw(st.sampled_from(CELLS))
    toml_value = draw(st.sampled_from(TOML_VALUES))
    encoding = draw(st.sampled_from(["cp1252", "utf-8-sig", "utf-16", "latin-1"]))

    def apply(folder: Path) -> None:
        path = folder / f"{table}.csv"
        if kind == "toml":
            return _damage_toml(folder / "instance.toml", pick, toml_value)
        try:
            rows = _rows(path)
        except (OSError, UnicodeDecodeError):
            return  # already removed or re-encoded by an earlier damage
        if not rows:
            return
        body = rows[1:] or [[""] * len(rows[0])]
        row = body[pick % len(body)]
        column = pick % len(rows[0])
        if kind == "cell":
            row[column] = value
        elif kind == "header":
            name = rows[0][column]
            rows[0][column] = [name.replace("_", " "), name.upper(), name[:-1], name + "s", value][pick % 5]
        elif kind == "drop_column":
            rows = [r[:column] + r[column + 1:] for r in rows]
        elif kind == "delete_row" and len(rows) > 1:
            rows.pop(1 + pick % (len(rows) - 1))
        elif kind == "duplicate_row":
            rows.append(list(row))
        elif kind == "blank_rows":
            rows[1:1] = [[""] * len(rows[0])] * 2
            rows.append([""] * len(rows[0]))
        elif kind == "extra_cells":
            row.extend(["1", "2"])
        if kind == "encoding":
            return _write(path, rows, encoding)
        if kind == "separator":
            french = [[c.replace(".", ",") if c.replace(".", "", 1).isdigit() else c for c in r] for r in rows]
            return _write(path, french, delimiter=[";", "\t", "|"][pick % 3])
        if kind == "truncate":
            data = path.read_bytes()
            return path.write_bytes(data[: pick % max(1, len(data))])
        if kind == "remove_file":
            return path.unlink()
        _write(path, rows)

    return f"{kind} {table} ({pick}, {value!r}, {toml_value!r}, {encoding})", apply


def _damage_toml(path: Path, pick: int, value: str) -> None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return
    keyed = [i for i, line in enumerate(lines) if "=" in line and not line.lstrip().startswith("#")]
    i = keyed[pick % len(keyed)]
    lines[i] = lines[i].split("=", 1)[0] + "= " + value
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(*args: str) -> tuple[int, str]:
    """A command in-process through the real entry point (exit code, what it printed)."""
    from flux_opt.cli.main import main

    out = io.StringIO()
    argv = sys.argv
    sys.argv = ["flux-opt", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            main()
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue()
    finally:
        sys.argv = argv
    return 0, out.getvalue()


FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXEMPLES", "12")), deadline=None,
                derandomize=not os.environ.get("FUZZ_ALEATOIRE"), phases=(Phase.explicit, Phase.generate),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(damages=st.lists(mutation(), min_size=1, max_size=3))
def test_damaged_inputs_never_crash_and_accepted_plans_hold(damages):
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "exemple", Path(tmp) / "plan"
        shutil.copytree(EXEMPLE, folder)
        for _, apply in damages:
            apply(folder)
        what = " ; ".join(d for d, _ in damages)
        code, text = run("verifier", str(folder))
        assert code in (0, 2) and "Erreur interne" not in text, f"{what}: verifier → {code}\n{text}"
        code, text = run("convertir", str(folder))
        assert code in (0, 2, 3) and "Erreur interne" not in text, f"{what}: convertir → {code}\n{text}"
        code, text = run("plan", str(folder), "--sans-analyse", "--sortie", str(out))
        assert code in (0, 2, 3) and "Erreur interne" not in text, f"{what}: plan → {code}\n{text}"
        if code == 2:
            assert not out.exists(), f"{what}: un refus a laissé {out}"
            return
        reported = {famille for famille, _ in violated_rows(out)}
        assert (code == 3) == bool(reported), f"{what}: code {code}, règles violées {reported}"
        found = check_plan(folder, out)
        assert not [v for v in found if v.famille in NEVER_VIOLATED or v.famille not in reported], \
            f"{what}: le vérificateur indépendant refuse le plan : {found}"


# --------------------------------------------------------------------------- workbooks

SHEET_CELLS = [*CELLS, "=1+1", "=A1", "=SUM(A1:A3)", '=HYPERLINK("http://x")', 1e308, -1, 0.5, True, None]


@st.composite
def workbook_damage(draw):
    """One damage to the example's workbook: a cell, a sheet's name, or the bytes of one of its parts."""
    kind = draw(st.sampled_from(["cell", "cell", "sheet_name", "part_truncate", "part_bytes", "shared_string",
                                 "part_remove", "file_truncate"]))
    pick = draw(st.integers(0, 10**6))
    value = draw(st.sampled_from(SHEET_CELLS))
    name = draw(st.sampled_from(["exclusion", "Parc", "parc ", "parametre", "notes", "demandes", "x" * 31]))
    return kind, pick, value, name


def _damage_workbook(source: Path, target: Path, damage) -> None:
    import zipfile

    import openpyxl

    kind, pick, value, name = damage
    if kind in ("cell", "sheet_name"):
        book = openpyxl.load_workbook(source)
        sheet = book.worksheets[pick % len(book.worksheets)]
        if kind == "cell":
            sheet.cell(1 + pick % max(1, sheet.max_row), 1 + pick % max(1, sheet.max_column)).value = value
        elif name not in book.sheetnames:
            sheet.title = name
        book.save(target)
        return
    data = source.read_bytes()
    if kind == "file_truncate":
        target.write_bytes(data[: pick % len(data)])
        return
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        parts = old.namelist()
        chosen = [p for p in parts if p.startswith("xl/")][pick % len([p for p in parts if p.startswith("xl/")])]
        for part in parts:
            content = old.read(part)
            if part == chosen and kind == "part_remove":
                continue
            if part == chosen and kind == "part_truncate":
                content = content[: pick % max(1, len(content))]
            elif part == chosen and kind == "part_bytes":
                at = pick % max(1, len(content))
                content = content[:at] + b"\x00<\xff&" + content[at + 4:]
            elif part == chosen and kind == "shared_string":
                content = content.replace(b"<v>", b"<v>9999", 1)
            new.writestr(part, content)


@FUZZ
@given(damages=st.lists(workbook_damage(), min_size=1, max_size=2))
def test_damaged_workbooks_never_crash(damages):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "exemple.xlsx"
        shutil.copy(EXEMPLE.with_suffix(".xlsx"), path)
        for k, damage in enumerate(damages):
            damaged = Path(tmp) / f"abime{k}.xlsx"
            try:
                _damage_workbook(path, damaged, damage)
            except Exception:  # noqa: BLE001 - openpyxl cannot reopen an already damaged file: keep it
                continue
            path = damaged
        code, text = run("verifier", str(path))
        assert code in (0, 2) and "Erreur interne" not in text and "Traceback" not in text, f"{damages}: {code}\n{text}"


# --------------------------------------------------------------------------- the negotiation page

_PAGE: dict = {}


def _page():
    """One served page for every example (its base plan is solved once): (client, token, instance digest)."""
    if not _PAGE:
        from starlette.testclient import TestClient

        from flux_opt.negotiation.live.app import create_app
        from flux_opt.negotiation.live.state import Session

        sortie = Path(tempfile.mkdtemp(prefix="fuzz-page-"))
        app = create_app(Session(EXEMPLE, sortie), token="jeton")
        _PAGE.update(client=TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False),
                     digest=_digest(EXEMPLE))
    return _PAGE["client"], _PAGE["digest"]


def _digest(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


FIELDS = ["nom", "regles.prefet_taux", "regles.prefet_agents_taux", "cia.q1_hors_qpv", "reservataires.mel.taux",
          "conversion.methode", "conversion.annees", "inconnu", ""]
VALUES = st.one_of(st.sampled_from(["25", "25,5 %", "-1", "1e999", "nan", "", "abc", "30", "0", "\x00", "é" * 300,
                                    "globale", "3"]),
                   st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.booleans(), st.none(),
                   st.lists(st.integers(), max_size=2), st.text(max_size=40))


@FUZZ
@given(path=st.sampled_from(["/api/plan", "/api/enregistrer", "/api/exporter", "/", "/fichiers/x", "/api/x"]),
       method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]),
       body=st.one_of(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=4).map(
           lambda d: __import__("json").dumps(d).encode()), st.binary(max_size=200),
           st.sampled_from([b"[]", b"null", b"{", b'{"nom": "\xff"}', b"x" * 70_000])),
       content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", None]),
       token=st.sampled_from(["jeton", "jeton", "", "autre"]),
       origin=st.sampled_from([None, None, "http://127.0.0.1", "http://evil.example", "null"]),
       host=st.sampled_from(["127.0.0.1", "127.0.0.1", "evil.example", "localhost"]))
def test_the_page_answers_every_request_without_failing(path, method, body, content_type, token, origin, host):
    client, digest = _page()
    headers = {"Host": host, "X-Jeton": token}
    if content_type:
        headers["Content-Type"] = content_type
    if origin:
        headers["Origin"] = origin
    answer = client.request(method, path, content=body if method != "GET" else None, headers=headers)
    assert answer.status_code in (200, 400, 403, 404, 405, 413, 415), (answer.status_code, answer.text[:300])
    if answer.status_code != 200 and answer.headers.get("content-type", "").startswith("application/json"):
        assert answer.json().get("message", "") or answer.status_code in (404, 405)
    if host == "evil.example" or origin in ("http://evil.example", "null"):
        assert answer.status_code == 403
    assert _digest(EXEMPLE) == digest  # the instance is never written
