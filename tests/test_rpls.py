"""`flux-opt importer rpls`: the synthetic extract, each column form, the rotation recovered from the lease
dates, and hostile files (misspelled column, unknown FINAN, wrong département, bad dates, empty, formulas)."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from flux_opt.cli.main import app
from flux_opt.errors import InvalidInput
from flux_opt.input.schema import load_instance
from flux_opt.rpls.read import read_rpls
from flux_opt.rpls.rotation import estimate_rotation
from flux_opt.rpls.synthetic import generate_rpls, write_rpls
from flux_opt.rpls.write import import_rpls

runner = CliRunner()


def _csv(tmp_path, table: pd.DataFrame, name="rpls.csv", sep=";", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(table.to_csv(sep=sep, index=False).encode(encoding))
    return path


def _small(**kw):
    return generate_rpls(600, graine=3, communes=6, **kw)


def test_generator_is_seeded_and_has_both_forms():
    a, b = generate_rpls(500, graine=7), generate_rpls(500, graine=7)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert not a.table.equals(generate_rpls(500, graine=8).table)
    assert {"depcom_code", "finan_code", "bail", "qpv_code", "nbpiece"} <= set(a.table.columns)
    upper = generate_rpls(500, graine=7, forme="declaration").table
    assert {"DEPCOM", "FINAN", "BAIL", "QPV", "NBPIECE", "CONSTRUCT", "MODE", "LOCAT"} <= set(upper.columns)
    assert upper["BAIL"].str.fullmatch(r"(\d{2}/\d{4})?").all()  # mm/aaaa as declared


def test_both_forms_and_xlsx_give_the_same_parc(tmp_path):
    open_data = _small()
    declaration = _small(forme="declaration")
    parcs = []
    for i, (table, sep, enc) in enumerate([(open_data.table, ",", "utf-8"), (declaration.table, ";", "cp1252")]):
        result = import_rpls(_csv(tmp_path, table, f"f{i}.csv", sep, enc), tmp_path / f"i{i}", annee=2027)
        parcs.append(result.parc)
    write_rpls(open_data, tmp_path / "f.xlsx")
    parcs.append(import_rpls(tmp_path / "f.xlsx", tmp_path / "i2", annee=2027).parc)
    keys = ["commune", "qpv", "typologie", "financement", "periode_construction", "logements", "taux_rotation"]
    for other in parcs[1:]:
        pd.testing.assert_frame_equal(parcs[0][keys].reset_index(drop=True), other[keys].reset_index(drop=True))
    assert parcs[0]["logements"].sum() == (open_data.table["mode"] != "3").sum()


def test_mixed_case_headers_are_read(tmp_path):
    table = _small().table.rename(columns={"depcom_code": "DepCom_Code", "nbpiece": "NbPiece", "bail": "Bail"})
    assert len(read_rpls(_csv(tmp_path, table)).dwellings) > 0


def test_codes_are_mapped_by_the_documented_tables(tmp_path):
    table = _small().table.head(8).copy()
    table["nbpiece"] = ["1", "2", "3", "4", "5", "6", "7", "9"]
    table["finan_code"] = ["10", "11", "12", "13", "14", "16", "52", "99"]
    table["qpv_code"] = ["", "0", "QP059001", "QN05921M", "oui", "non", "", ""]
    table["construct"] = ["1930", "1960", "1980", "2005", "2020", "", "1949", "1975"]
    d = read_rpls(_csv(tmp_path, table)).dwellings.sort_values("ligne")
    assert list(d["typologie"]) == ["T1", "T2", "T3", "T4", "T5", "T6+", "T6+", "T6+"]
    assert list(d["financement"]) == ["PLAI", "PLAI", "PLUS", "PLUS", "PLS", "autre", "autre", "autre"]
    assert list(d["qpv"]) == [False, False, True, True, True, False, False, False]
    assert list(d["periode_construction"]) == ["avant 1949", "1949-1974", "1975-1999", "2000-2014", "depuis 2015",
                                               "", "1949-1974", "1975-1999"]


def test_finan_libelle_when_there_is_no_code(tmp_path):
    table = _small().table.head(5).drop(columns=["finan_code"]).copy()
    table["finan_libelle"] = ["PLA d'intégration (LLTS dans les DOM)", "PLUS (LLS dans les DOM)",
                              "PLS/PPLS/PCLS/PLA CFF", "HLM/O", "PLI"]
    d = read_rpls(_csv(tmp_path, table)).dwellings.sort_values("ligne")
    assert list(d["financement"]) == ["PLAI", "PLUS", "PLS", "autre", "autre"]


def test_rotation_is_recovered_from_the_lease_dates(tmp_path):
    s = generate_rpls(40_000, graine=11)
    rotation = estimate_rotation(read_rpls(write_rpls(s, tmp_path / "r.csv")).dwellings, s.annee)
    c = rotation.cells.merge(s.true_rates, on=["commune", "typologie", "qpv"])
    inside = (c["borne_basse"] <= c["taux"]) & (c["taux"] <= c["borne_haute"])
    assert inside.mean() > 0.85  # 95 % intervals, the uncertainty of m left out (models/rpls.md §3)
    big = c["logements_observes"] >= 200
    assert inside[big].mean() > 0.85 and big.sum() > 20
    observed = c.dropna(subset=["taux_brut"])
    raw_error = ((observed["taux_brut"] - observed["taux"]) ** 2).mean()
    shrunk_error = ((observed["taux_estime"] - observed["taux"]) ** 2).mean()
    assert shrunk_error < raw_error / 3  # small cells pulled towards their EPCI are much closer to the truth
    overall = (s.true_rates.merge(c[["commune", "typologie", "qpv", "logements"]]).eval("taux * logements").sum()
               / c["logements"].sum())
    assert rotation.departement_rate == pytest.approx(overall, abs=0.005)


def test_the_imported_instance_is_valid_and_says_what_to_fill(tmp_path):
    result = runner.invoke(app, ["importer", "rpls", str(_csv(tmp_path, _small().table)), "--sortie",
                                 str(tmp_path / "inst"), "--annee", "2027"])
    assert result.exit_code == 0, result.output
    assert "reservataires.csv" in result.output and "Taux de mobilité 2026" in result.output
    instance = load_instance(tmp_path / "inst")
    assert instance.parametres.instance.annee == 2027 and instance.parametres.instance.departement == "59"
    rotation = pd.read_csv(tmp_path / "inst" / "rotation.csv", dtype={"commune": str})
    assert {"emmenagements", "logements_observes", "taux_brut", "taux_estime", "borne_basse", "borne_haute"} \
        <= set(rotation.columns)
    assert (rotation["borne_basse"] <= rotation["taux_estime"]).all()
    assert (rotation["taux_estime"] <= rotation["borne_haute"]).all()
    again = runner.invoke(app, ["importer", "rpls", str(tmp_path / "rpls.csv"), "--sortie", str(tmp_path / "inst")])
    assert again.exit_code == 2 and "--remplacer" in again.output
    parc = (tmp_path / "inst" / "parc.csv").read_bytes()
    assert runner.invoke(app, ["importer", "rpls", str(tmp_path / "rpls.csv"), "--sortie", str(tmp_path / "inst"),
                               "--remplacer", "--annee", "2027"]).exit_code == 0
    assert (tmp_path / "inst" / "parc.csv").read_bytes() == parc


def test_without_lease_dates_the_default_is_used_and_said(tmp_path):
    table = _small().table.drop(columns=["bail"])
    result = import_rpls(_csv(tmp_path, table), tmp_path / "inst", annee=2027)
    assert result.parc["taux_rotation"].isna().all()
    assert "defaut = 0.08" in (tmp_path / "inst" / "instance.toml").read_text()
    from flux_opt.rpls.write import report_lines
    assert any("Pas de colonne bail" in line for line in report_lines(result))
    assert not (tmp_path / "inst" / "rotation.csv").exists()


# --------------------------------------------------------------------------- hostile files


def test_misspelled_column_names_the_closest(tmp_path):
    table = _small().table.rename(columns={"nbpiece": "nbpeice"})
    with pytest.raises(InvalidInput) as exc:
        read_rpls(_csv(tmp_path, table))
    assert "« nbpeice » → nbpiece ?" in str(exc.value)
    table = _small().table.rename(columns={"bail": "bial"})  # optional, but never silently ignored
    with pytest.raises(InvalidInput, match="« bial » → bail"):
        read_rpls(_csv(tmp_path, table))


def test_unknown_finan_is_reported_and_counted_autre(tmp_path):
    table = _small().table.copy()
    table.loc[[3, 9], "finan_code"] = "77"
    extract = read_rpls(_csv(tmp_path, table))
    problem = next(p for p in extract.report if "77" in p.message)
    assert problem.ligne == 5 and problem.champ == "finan_code" and "2 lignes (5, 11)" in problem.message
    assert (extract.dwellings.set_index("ligne").loc[[5, 11], "financement"] == "autre").all()


def test_dwellings_of_another_departement_are_reported(tmp_path):
    table = _small().table.copy()
    table.loc[0, "depcom_code"] = "62041"
    extract = read_rpls(_csv(tmp_path, table), departement="59")
    assert any("hors du département 59" in p.message and p.ligne == 2 for p in extract.report)
    assert 2 not in set(extract.dwellings["ligne"])
    result = runner.invoke(app, ["importer", "rpls", str(tmp_path / "rpls.csv"), "--sortie", str(tmp_path / "o"),
                                 "--departement", "80", "--annee", "2027"])
    assert result.exit_code == 2 and "hors du département 80" in result.output
    assert not (tmp_path / "o").exists()


def test_bad_lease_dates_are_reported_and_kept_in_the_parc(tmp_path):
    table = _small().table.copy()
    table.loc[[0, 1], "bail"] = ["31/13/2026", "bientôt"]
    extract = read_rpls(_csv(tmp_path, table))
    problem = next(p for p in extract.report if p.champ == "bail")
    assert problem.ligne == 2 and "2 lignes (2, 3)" in problem.message
    assert {2, 3} <= set(extract.dwellings["ligne"])
    base, _, _ = __import__("flux_opt.rpls.rotation", fromlist=["x"]).mobility_base(extract.dwellings, 2027)
    assert not base[extract.dwellings["ligne"].isin([2, 3])].any()


@pytest.mark.parametrize("content", [b"", b"\n\n", b"depcom_code;epci_code;qpv_code;nbpiece;finan_code\n"])
def test_empty_file_is_refused(tmp_path, content):
    path = tmp_path / "vide.csv"
    path.write_bytes(content)
    result = runner.invoke(app, ["importer", "rpls", str(path), "--sortie", str(tmp_path / "o")])
    assert result.exit_code == 2 and ("vide" in result.output or "aucune ligne" in result.output)


def test_xlsx_formula_without_saved_value_is_named(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["depcom_code", "epci_code", "qpv_code", "nbpiece", "finan_code", "bail"])
    sheet.append(["59350", "200093201", "", 3, "13", "2026-03-01"])
    sheet.append(["59350", "200093201", "", "=D2+1", "13", "2026-03-01"])
    book.save(tmp_path / "f.xlsx")
    with pytest.raises(InvalidInput) as exc:
        read_rpls(tmp_path / "f.xlsx")
    assert exc.value.problems[0].ligne == 3 and "formule" in exc.value.problems[0].message


def test_xlsx_number_codes_get_their_leading_zero(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["DEPCOM", "EPCI", "QPV", "NBPIECE", "FINAN"])
    sheet.append([1004, 200069193, 0, 2, 13])
    book.save(tmp_path / "f.xlsx")
    extract = read_rpls(tmp_path / "f.xlsx")
    assert extract.dwellings["commune"].tolist() == ["01004"] and extract.departement == "01"


def test_mode_and_first_letting_year_shape_the_mobility_base(tmp_path):
    table = _small().table.head(6).copy()
    table["mode"] = ["1", "2", "3", "1", "1", "7"]
    table["locat"] = ["1990", "1990", "1990", "2026", "2025", "1990"]
    table["bail"] = ["2026-05-01", "", "", "2026-06-01", "2026-02-01", "2010-01-01"]
    from flux_opt.rpls.rotation import mobility_base

    extract = read_rpls(_csv(tmp_path, table))
    d = extract.dwellings.set_index("ligne")
    assert 4 not in d.index  # mode 3: empty for works, sale or demolition, out of the parc (and said)
    assert any(p.champ == "mode" and "mode 3" in p.message for p in extract.report)
    assert any(p.champ == "mode" and "inconnu" in p.message and p.ligne == 7 for p in extract.report)
    base, moved, _ = mobility_base(extract.dwellings, 2027)
    by_line = dict(zip(extract.dwellings["ligne"], zip(base, moved)))
    assert by_line[2] == (True, True)  # let, lease of 2026: a move-in
    assert by_line[3] == (True, False)  # vacant, offered for rent: in the base
    assert by_line[5] == (False, False)  # first let in 2026: in service for less than a year
    assert by_line[6] == (True, True)  # first let in 2025, new lease in 2026
    assert by_line[7] == (True, False)  # unknown mode read as offered for rent, old lease


@pytest.mark.parametrize("name", ["absent.csv", "dossier"])
def test_missing_file_exits_2(tmp_path, name):
    (tmp_path / "dossier").mkdir()
    result = runner.invoke(app, ["importer", "rpls", str(tmp_path / name), "--sortie", str(tmp_path / "o")])
    assert result.exit_code == 2 and "introuvable" in result.output and "Erreur interne" not in result.output


def test_a_year_that_does_not_match_the_file_measures_no_rotation(tmp_path):
    result = import_rpls(_csv(tmp_path, _small().table), tmp_path / "inst", annee=2030)  # leases end in 2026
    from flux_opt.rpls.write import report_lines

    assert result.rotation is None and result.parc["taux_rotation"].isna().all()
    text = "\n".join(report_lines(result))
    assert "Aucun bail n'a pris effet en 2029" in text and "--annee" in text


def test_ragged_lines(tmp_path):
    header = "depcom_code;epci_code;qpv_code;nbpiece;finan_code;bail\n"
    short = tmp_path / "court.csv"
    short.write_text(header + "59350;200093201;;3;13;2026-03-01\n59350;200093201;;3\n")
    d = read_rpls(short).dwellings
    assert d.loc[d["ligne"] == 3, "financement"].item() == "autre"  # blank FINAN, reported, not the text "nan"
    assert (d["bail"].isna() | (d["bail"].dt.year == 2026)).all()
    long = tmp_path / "long.csv"
    long.write_text(header + "59350;200093201;;3;13;2026-03-01\n59350;200093201;;3;13;2026-03-01;x\n")
    with pytest.raises(InvalidInput) as exc:
        read_rpls(long)
    assert exc.value.problems[0].ligne == 3 and "7 cellules pour 6 colonnes" in exc.value.problems[0].message


def test_unrecognised_qpv_and_rooms_are_set_aside_and_counted(tmp_path):
    table = _small().table.copy()
    table.loc[0, "qpv_code"] = "peut-être"
    table.loc[1, "nbpiece"] = "0"
    extract = read_rpls(_csv(tmp_path, table))
    by_field = {p.champ: p for p in extract.report}
    assert by_field["qpv_code"].ligne == 2 and "écarté" in by_field["qpv_code"].message
    assert by_field["nbpiece"].ligne == 3
    assert not {2, 3} & set(extract.dwellings["ligne"]) and len(extract.dwellings) == extract.lines - 2 - \
        (table["mode"] == "3").sum()
