"""What the terminal shows, read at 80 columns: every figure whole (no « … », no line past 80), names
not codes, and the follow-up's alerts agreeing with its table."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from flux_opt import pipeline
from flux_opt.report.outputs import write_run
from flux_opt.cli.main import app
from flux_opt.explanation.sentences import fr_number
from flux_opt.input.schema import load_instance
from flux_opt.negotiation.compare import comparison_tables
from flux_opt.negotiation.sweep import parse_sweep, sweep
from flux_opt.report.compare import comparison_renderable, sweep_renderable
from flux_opt.report.explanation_terminal import explanation_view
from flux_opt.report.suivi import suivi_tables, suivi_view
from flux_opt.report.tables import fitted_tables, frame_table
from flux_opt.report.terminal import conformity_table, targets_view
from flux_opt.year.alerts import _dans, pace_alerts
from flux_opt.year.conventions import contexte
from flux_opt.year.journal.storage import read_journal
from flux_opt.year.simulation import simulate_year
from flux_opt.year.suivi import suivi
from flux_opt.plan.names import Names

from conftest import EXEMPLE

CODES = ("prefet_agents", "ville_roubaix", "action_logement", "employeur_port", "plafond_prefet")


def render(*renderables) -> str:
    console = Console(width=80, record=True, color_system=None)
    for r in renderables:
        console.print(r)
    return console.export_text()


def shows(name: str, text: str) -> bool:
    """The name's words in order in the text: a name wrapped in its cell interleaves with the cells
    beside it, word by word."""
    words = iter(text.split())
    return all(any(w == x for x in words) for w in name.split())


def readable(text: str) -> None:
    assert "…" not in text.replace("journal ajouter … retour_bailleur", "")  # a command line, not a cut
    assert max(len(line) for line in text.splitlines()) <= 80


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example's plan written as `flux-opt plan` does, and a simulated half year."""
    out = tmp_path_factory.mktemp("plan")
    done = pipeline.run_path(EXEMPLE, pipeline.PlanOptions(analysis=True, rule_costs=False, conformity=True))
    write_run(done, out)
    journal = out.parent / "journal.csv"
    simulate_year(out, journal, 2027, 3)
    return done, out, journal


@pytest.fixture(scope="module")
def swept():
    base = load_instance(EXEMPLE)
    return sweep(base, parse_sweep("prefet_taux=0.27:0.30:0.01"))


def test_suivi_main_table_keeps_every_figure_and_names_at_80_columns(example):
    done, out, journal = example
    data = load_instance(EXEMPLE)
    s = suivi(out, read_journal(journal), pd.Timestamp("2027-07-01").date(), contexte=contexte(data))
    lieux = Names.of(data)
    text = render(suivi_view(s, lieux=lieux))
    readable(text)
    flat = " ".join(text.split())
    for title, table in suivi_tables(s, lieux=lieux):
        for column in table.columns:
            for value in table[column]:
                if isinstance(value, str):
                    continue  # names wrap; their words are checked below
                shown = fr_number(value) if not column.startswith(("Taux", "Q", "Prio", "Part")) else None
                if shown is not None and shown != "—":
                    assert re.search(rf"(?<![\d,]){re.escape(shown)}(?![\d,])", text), (title, column, shown)
    for name in ("Action Logement Services", "Préfet du Nord (contingent préfectoral)", "Métropole européenne de Lille",
                 "Villeneuve-d'Ascq", "Valenciennes Métropole"):
        assert shows(name, text), name  # names, wrapped or not, not codes
    tables = text.split("À faire")[0]
    assert "59009" not in tables and "245901160" not in tables
    assert "(models/" not in text


def test_pace_alerts_use_the_figures_of_the_table(example):
    """The alert of a réservataire quotes its table's taux and projection (they once said 54 % and 43 %)."""
    _, out, journal = example
    data = load_instance(EXEMPLE)
    s = suivi(out, read_journal(journal), pd.Timestamp("2027-07-01").date(), contexte=contexte(data))
    table = suivi_tables(s)[0][1].set_index("Réservataire")
    alerts = pace_alerts(s)
    named = [a for a in alerts if not a.startswith("Ensemble")]
    assert named
    for alert in named:
        name = alert.split(" : ")[0]
        row = table.loc[name]
        assert f"(taux {round(100 * row['Taux'])} %)" in alert
        assert f"projection au 31 décembre : {fr_number(row['Projection'])}," in alert
        ahead = "vers les autres réservataires" in alert
        share = row["Projection"] / row["Objectif"]
        overall = table.loc["Total", "Projection"] / table.loc["Total", "Objectif"]
        assert ahead == (share > overall)  # ahead of the others by its projection, as the table shows
    assert _dans(0) == "aujourd'hui" and _dans(1) == "demain" and _dans(5) == "dans 5 jours"


def test_sweep_shows_every_reservataire_at_every_value_with_names(swept):
    text = render(sweep_renderable(swept))
    readable(text)
    flat = " ".join(text.split())
    for rid in swept.resultats[0].objectifs["reservataire"]:
        assert shows(swept.resultats[0].noms.reservataire(rid), text), rid
    for value in swept.points["valeur"]:
        assert f"{round(100 * value)} %" in text
    for column in [c for c in swept.points.columns if c.startswith("logements_")]:
        for v in swept.points[column]:
            assert re.search(rf"\b{int(v)}\b", text)
    assert not any(code in text for code in CODES)
    assert "sans que sa part change" in flat or "le taux du préfet passe de" in flat  # each change says why


def test_comparer_names_people_and_explains_at_80_columns(swept):
    r30, r27 = swept.resultats[-1], swept.resultats[0]
    c = comparison_tables(["base", "Préfet à 27 %"], {"base": "base", "Préfet à 27 %": "27 %"}, [r30, r27])
    text = render(comparison_renderable(c))
    readable(text)
    flat = " ".join(text.split())
    assert not any(code in text for code in CODES)
    assert "Entreprises du port de Dunkerque (fictif) perd 1 logement (3 → 2)" in flat
    assert "sans que sa part change (2,16 logements avant arrondi)" in flat
    assert "Règles non tenues" in flat and "Valeur de l'objectif" not in flat


def test_expliquer_headings_and_figures_whole(example):
    done, out, _ = example
    text = render(explanation_view(out))
    readable(text)
    expected = round(done.result.resume["attributions_prevues"])  # an expected count, read as an integer
    assert f"environ {expected} attributions prévues" in " ".join(text.split())


def test_verifier_controler_and_ranking_read_with_names(example):
    done, out, _ = example
    data = load_instance(EXEMPLE)
    text = render(targets_view(data, done.targets, done.flux.total),
                  conformity_table(done.conformite, noms=done.result.noms))
    readable(text)
    flat = " ".join(text.split())
    for t in done.targets.table.itertuples():
        assert re.search(rf"\b{t.cible}\b", text)
    assert shows("Entreprises du port de Dunkerque (fictif)", text)
    assert "taux_prefet_par_defaut" not in text and "article_5" not in text
    assert shows("logements réservés en stock (735)", text)
    ranking = pd.DataFrame({"Rang": [1, 2], "Réservataire": ["Préfet du Nord (agents civils et militaires de l'État)",
                                                              "Habitat Flandre Métropole (fictif) - contingent propre"],
                            "Niveau comparé": ["commune × typologie × QPV", "segment"], "Prévus": [12, 1234],
                            "Orientés": [3, 567], "Restants": [9, 667], "Part orientée": ["25 %", "46 %"]})
    text = render(frame_table(ranking, "Pré-orientation"))
    readable(text)
    for figure in ("1 234", "567", "667", "25 %", "46 %"):
        assert figure in text


def test_fitted_tables_split_figures_that_do_not_fit_and_keep_them_whole():
    cells = pd.DataFrame({"Nom": ["Métropole européenne de Lille"], **{f"Indicateur numéro {i}": ["123 456,7"]
                                                                         for i in range(9)}})
    tables = fitted_tables(cells, "Large", [c for c in cells.columns if c != "Nom"])
    assert len(tables) >= 2 and tables[0].title.endswith("(1 sur %d)" % len(tables))
    text = render(*tables)
    readable(text)
    assert text.count("123 456,7") == 9 and text.count("Métropole") == len(tables)


def test_orienter_reuses_a_release_already_in_the_journal(example, tmp_path):
    """As the README shows: the release recorded first, then `orienter --enregistrer` proposes that
    same dwelling (it once recorded it a second time, LOG-00002)."""
    _, out, _ = example
    journal = tmp_path / "journal.csv"
    runner = CliRunner()
    first = runner.invoke(app, ["journal", "ajouter", str(journal), "liberation", "--plan", str(out),
                                "--date", "2027-02-01", "--logement-id", "RPLS-42", "--commune", "59350",
                                "--qpv", "non", "--typologie", "T3", "--financement", "PLUS"])
    assert first.exit_code == 0, first.output
    run = runner.invoke(app, ["orienter", str(out), str(journal), "--logement",
                              "commune=59350,typologie=T3,qpv=non,financement=PLUS", "--enregistrer"])
    assert run.exit_code == 0, run.output
    events = pd.read_csv(journal, dtype=str, keep_default_na=False)
    assert list(events["evenement"]) == ["liberation", "proposition"]
    assert set(events["logement_id"]) == {"RPLS-42"}
    assert "RPLS-42 : déjà libéré dans le journal" in run.output
    again = runner.invoke(app, ["orienter", str(out), str(journal), "--logement",
                                "commune=59350,typologie=T3,qpv=non,financement=PLUS", "--enregistrer"])
    assert again.exit_code == 0, again.output  # RPLS-42 is now proposed: a new release this time
    events = pd.read_csv(journal, dtype=str, keep_default_na=False)
    assert list(events["evenement"]) == ["liberation", "proposition", "liberation", "proposition"]
    assert events["logement_id"].iloc[2] != "RPLS-42"


def test_convertir_reads_with_names_and_whole_figures():
    from flux_opt.report.conversion import console_view, conversion_table
    from flux_opt.stock.instance import convert_instance

    data = load_instance(EXEMPLE)
    result = convert_instance(data)
    noms = {r.id: r.nom for r in data.reservataires}
    text = render(console_view(result, noms))
    readable(text)
    assert not any(code in text for code in CODES)
    assert shows("Entreprises du port de Dunkerque (fictif)", text)
    assert "surtout Action Logement Services" in " ".join(text.split())
    for value in conversion_table(result.conversion)["Volume dû (relogements)"]:
        assert f"{value:.1f}".replace(".", ",") in text
