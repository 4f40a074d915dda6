"""Bad input: every problem is reported in French with its file, line and field; all at once."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from flux_opt.cli.main import app
from flux_opt.errors import InvalidInput
from flux_opt.input.schema import json_schema, load_instance

from conftest import EXEMPLE, MINI


@pytest.fixture
def mini(tmp_path):
    folder = tmp_path / "mini"
    shutil.copytree(MINI, folder)
    return folder


def replace(folder, name, old, new):
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} absent de {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def problems(folder):
    with pytest.raises(InvalidInput) as error:
        load_instance(folder)
    return error.value.problems


# (file, old text, new text, expected file, line, field, words of the message)
CASES = [
    ("parc.csv", "59350,200093201,non,T3,PLUS,300,30", "59350,200093201,non,T3,PLUS,-300,30",
     "parc.csv", 3, "logements", "valeurs admises : de 0 à 1\u202f000\u202f000"),
    ("parc.csv", "59350,200093201,non,T3,PLUS,300,30", "59350,200093201,non,T9,PLUS,300,30",
     "parc.csv", 3, "typologie", "valeur attendue parmi"),
    ("parc.csv", "59350,200093201,non,T3,PLUS,300,30", "5935,200093201,non,T3,PLUS,300,30",
     "parc.csv", 3, "commune", "code invalide"),
    ("parc.csv", "59350,200093201,non,T3,PLUS,300,30", "59350,200093201,peut-être,T3,PLUS,300,30",
     "parc.csv", 3, "qpv", "oui/non"),
    ("parc.csv", "59350,200093201,non,T3,PLUS,300,30", "59350,200093201,oui,T2,PLUS,300,30",
     "parc.csv", 3, "commune", "segment en double"),
    ("parc.csv", "59512,200093201,oui,T3,PLAI,100,10", "59512,200099999,oui,T3,PLAI,100,10",
     "parc.csv", 5, "epci", "déjà rattachée"),  # line 5 disagrees with line 4
    ("reservataires.csv", "agents,Agents de l'État,prefet_agents,,0.05", "agents,Agents de l'État,prefet_agents,,1.05",
     "reservataires.csv", 3, "taux", "valeurs admises : de 0 à 1)"),
    ("reservataires.csv", "bailleur,Bailleur,bailleur", "bailleur,Bailleur,prefet_agents",
     "reservataires.csv", None, "type", "exactement une ligne de type bailleur"),
    ("reservataires.csv", "prefet,Préfet du Nord,prefet,,", "prefet,Préfet du Nord,prefet,59999,",
     "reservataires.csv", 2, "territoire", "absent du parc"),
    ("reservataires.csv", "agents,Agents", "prefet,Agents",
     "reservataires.csv", 3, "id", "en double"),
    ("demande.csv", "agents,,200093201,T2,q234,non,100", "inconnu,,200093201,T2,q234,non,100",
     "demande.csv", 4, "reservataire", "inconnu"),
    ("demande.csv", "agents,,200093201,T2,q234,non,100", "agents,59350,200093201,T2,q234,non,100",
     "demande.csv", 4, None, "exactement une zone"),
    ("demande.csv", "agents,,200093201,T2,q234,non,100", "agents,59350,,T3,q234,non,100",
     "demande.csv", 4, "commune", "aussi couverte"),
    ("instance.toml", 'departement = "59"', 'departement = "59"\n[regles]\nprefet_taux = 1.3',
     "instance.toml", None, "regles.prefet_taux", "valeurs admises : de 0 à 1)"),
    ("instance.toml", 'departement = "59"', 'departement = "59"\n[regles]\nprefet_tau = 0.3',
     "instance.toml", None, "regles.prefet_tau", "clé inconnue : prefet_taux ?"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}:{c[5]}:{c[6][:20]}" for c in CASES])
def test_each_validation_error_names_file_line_and_field(mini, case):
    name, old, new, file, line, field, words = case
    replace(mini, name, old, new)
    found = problems(mini)
    match = [p for p in found if p.fichier == file and p.ligne == line and p.champ == field]
    assert match, f"attendu {file}:{line}:{field}, trouvé {[str(p) for p in found]}"
    assert words in match[0].message


def test_all_problems_are_listed_not_just_the_first(mini):
    replace(mini, "parc.csv", "59350,200093201,oui,T2,PLUS,200,20", "59350,200093201,oui,T2,PLUS,abc,20")
    replace(mini, "parc.csv", "59512,200093201,non,T2,PLUS,400,40", "59512,200093201,non,T2,XXX,400,40")
    replace(mini, "demande.csv", "prefet,,200093201,T2,q1,oui,100", "prefet,,200093201,T2,q7,oui,100")
    found = problems(mini)
    assert {(p.fichier, p.ligne, p.champ) for p in found} >= {
        ("parc.csv", 2, "logements"), ("parc.csv", 5, "financement"), ("demande.csv", 2, "quartile")}


def test_missing_file_and_missing_column(mini):
    (mini / "demande.csv").unlink()
    replace(mini, "parc.csv", "logements,liberations", "nb,liberations")
    found = problems(mini)
    assert any(p.fichier == "demande.csv" and "manquant" in p.message for p in found)


def test_missing_column_is_reported_on_the_header_line(mini):
    replace(mini, "parc.csv", "logements,liberations", "nb,liberations")
    [p] = problems(mini)
    assert (p.fichier, p.ligne, p.champ) == ("parc.csv", 1, "logements")


def test_codes_stay_strings_and_corsican_codes_are_accepted(mini):
    for file in mini.iterdir():
        text = file.read_text(encoding="utf-8")
        file.write_text(text.replace("59350", "2A004").replace("59512", "2A041")
                        .replace('departement = "59"', 'departement = "2A"'), encoding="utf-8")
    instance = load_instance(mini)
    assert {r.commune for r in instance.parc} == {"2A004", "2A041"}
    assert instance.parametres.instance.departement == "2A"


def test_a_commune_of_another_departement_is_refused(mini):
    replace(mini, "parc.csv", "59350,200093201", "62041,200093201")
    found = problems(mini)
    assert any(p.fichier == "parc.csv" and p.ligne == 2 and p.champ == "commune"
               and "pas dans le département 59" in p.message for p in found), found


def test_xlsx_and_csv_load_the_same_instance():
    from_csv = load_instance(EXEMPLE)
    from_xlsx = load_instance(EXEMPLE.parent / "exemple.xlsx")
    for table in ("parc", "exclusions", "reservataires", "demande", "objectifs", "mixite", "conventions"):
        assert getattr(from_csv, table) == getattr(from_xlsx, table), table
    assert from_csv.parametres == from_xlsx.parametres


def test_invalid_input_exits_2_in_french_and_keeps_existing_files(mini, tmp_path):
    out = tmp_path / "sortie"
    out.mkdir()
    (out / "plan.csv").write_text("ancien plan\n", encoding="utf-8")
    replace(mini, "parc.csv", "59350,200093201,non,T3,PLUS,300,30", "59350,200093201,non,T3,PLUS,-300,30")
    result = CliRunner().invoke(app, ["plan", str(mini), "--sortie", str(out)])
    assert result.exit_code == 2
    assert "parc.csv" in result.output and "logements" in result.output
    assert (out / "plan.csv").read_text(encoding="utf-8") == "ancien plan\n"


def test_json_schema_export(tmp_path):
    schema = json_schema()
    assert schema["title"] == "Instance flux-opt"
    assert "ParcRow" in schema["$defs"]
    target = tmp_path / "schema.json"
    result = CliRunner().invoke(app, ["schema", "--sortie", str(target)])
    assert result.exit_code == 0
    assert json.loads(target.read_text(encoding="utf-8"))["$defs"]["ReservataireRow"]["properties"]["taux"]
