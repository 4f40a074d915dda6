"""The data dictionary and the help are French, and come from one source (issue 13 point 7)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from flux_opt.cli.main import app
from flux_opt.input.dictionary import dictionary_markdown
from flux_opt.input.schema import ROW_MODELS, Parametres, json_schema

from conftest import ROOT


def test_docs_donnees_is_the_generated_dictionary():
    written = (ROOT / "docs" / "donnees.md").read_text(encoding="utf-8")
    assert written == dictionary_markdown(), "docs/donnees.md périmé : flux-opt schema --dictionnaire --sortie docs/donnees.md"


def test_every_input_column_and_key_is_described_with_an_example():
    models = [*ROW_MODELS.values(), *(f.annotation for f in Parametres.model_fields.values())]
    for model in models:
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} sans description"
    text = dictionary_markdown()
    for table, model in ROW_MODELS.items():
        assert f"## {table}.csv" in text
        assert all(f"| `{name}` |" in text for name in model.model_fields), table
    logements = json_schema()["$defs"]["ParcRow"]["properties"]["logements"]
    assert logements["description"] == "Nombre de logements du segment."
    assert logements["unite"] == "logements" and logements["examples"] == [120] and logements["maximum"] == 1_000_000


def test_schema_command_writes_the_dictionary_and_the_json(tmp_path):
    result = CliRunner().invoke(app, ["schema", "--sortie", str(tmp_path / "s.json")])
    assert result.exit_code == 0
    schema = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert schema["$defs"]["DemandeRow"]["properties"]["quartile"]["description"].startswith("Quartile")
    result = CliRunner().invoke(app, ["schema", "--dictionnaire"])
    assert result.output.startswith("# Dictionnaire des données d'entrée")


def test_help_is_in_french():
    text = CliRunner().invoke(app, ["plan", "--help"], env={"COLUMNS": "200"}).output
    for french in ("Utilisation : ", "Afficher cette aide et quitter.", "[défaut : highs]",
                   "[obligatoire]", "<chemin>", "<entier>", "[revoyure] report_max"):
        assert french in text, french
    for english in ("Show this message", "Usage:", "[default", "[required]", "<path>", "<int>"):
        assert english not in text, english
    assert "Commandes" in CliRunner().invoke(app, ["--help"]).output
