"""`flux-opt negocier`: the live negotiation page.

The form → scenario → re-plan chain is checked against separate `plan` runs of the same scenario;
the page itself is driven in a real headless Chromium (Debian's chromium + chromium-driver, which
.ci/run installs): load, change a rate, see the table and the chart change, bad input, save.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conftest import EXEMPLE
from flux_opt.negotiation.live.app import create_app, start_in_background
from flux_opt.negotiation.live.fields import read_form
from flux_opt.negotiation.live.state import Session
from flux_opt.negotiation.scenarios import apply_scenario, load_scenario
from flux_opt.pipeline import load, plan_instance


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Session:
    return Session(EXEMPLE, tmp_path_factory.mktemp("negociation"))


def _dwellings(result) -> dict[str, int]:
    return dict(zip(result.objectifs["reservataire"], result.objectifs["logements"].astype(int)))


# --------------------------------------------------------------------------- form → scenario

def test_form_reads_percent_and_french_decimals_and_keeps_only_changes():
    base = load(EXEMPLE)
    scenario, errors = read_form(base, {"regles.prefet_taux": "25,5 %", "cia.q1_hors_qpv": "25",
                                        "reservataires.mel.taux": "10", "nom": "Essai"})
    assert errors == {}
    assert scenario.regles == {"prefet_taux": pytest.approx(0.255)}
    assert scenario.cia == {}  # 25 % is the base value: no override
    assert scenario.reservataires["mel"].taux == pytest.approx(0.10)


@pytest.mark.parametrize("key, text, expected", [
    ("regles.prefet_taux", "45", "au plus 30 % (CCH R.441-5-2)"),
    ("regles.prefet_taux", "2a5", "nombre attendu (reçu : « 2a5 »)"),
    ("regles.prefet_agents_taux", "6", "au plus 5 % (CCH R.441-5-2)"),
    ("reservataires.prefet_agents.taux", "7", "au plus 5 % (CCH R.441-5-2)"),
    ("regles.collectivite_plafond", "25", "au plus 20 % (CCH R.441-5)"),
    ("reservataires.mel.taux", "-3", "doit être positif ou nul"),
    ("reservataires.mel.logements", "beaucoup", "nombre attendu (reçu : « beaucoup »)"),
    ("cia.q234_qpv", "120", "un taux ne dépasse pas 100 %"),
    ("conversion.annees", "2,5", "nombre entier d'années attendu, de 1 à 50"),
])
def test_bad_input_gets_a_french_message_on_its_field(key, text, expected):
    scenario, errors = read_form(load(EXEMPLE), {key: text})
    assert scenario is None and errors == {key: expected}


def test_agents_cannot_exceed_the_prefet_rate_they_are_part_of():
    _, errors = read_form(load(EXEMPLE), {"regles.prefet_taux": "4", "regles.prefet_agents_taux": "5"})
    assert errors == {"regles.prefet_agents_taux": "inclus dans le taux du préfet : au plus 4 %"}


# --------------------------------------------------------------------------- session

def test_each_change_replans_like_a_separate_plan_of_the_scenario(session):
    base = _dwellings(session.base_result)
    for form in ({"regles.prefet_taux": "25"}, {"reservataires.mel.taux": "10", "regles.prefet_hors_qpv_lecture": "part"}):
        update = session.update(form)
        assert update.errors == {} and update.comparison.noms == ["base", "Scénario"]
        separate = plan_instance(apply_scenario(session.base, session.scenario), duals=False)
        assert _dwellings(session.result) == _dwellings(separate)
        if form == {"regles.prefet_taux": "25"}:
            # The préfet's loss goes to the bailleur's own share; the others keep theirs.
            now = _dwellings(session.result)
            assert now["prefet"] < base["prefet"]
            assert now["bailleur"] - base["bailleur"] == base["prefet"] - now["prefet"]
            assert {r: now[r] for r in now if r not in ("prefet", "bailleur")} == \
                {r: base[r] for r in base if r not in ("prefet", "bailleur")}
            # the page says why each one moved (the rule, the rest)
            from flux_opt.negotiation.live.view import results_context

            gains = {g[0]: g for g in results_context(update.comparison, session.base, {})["gains"]}
            assert "le taux du préfet passe de 30 % à 25 %" in gains["Préfet du Nord (contingent préfectoral)"][4]
            assert gains["Habitat Flandre Métropole (fictif) - contingent propre"][4].startswith(
                "le bailleur reçoit le reste du flux")
    assert session._planner.rebuilds <= 2  # one model for the session (the QPV reading rebuilds it)


def test_conversion_choice_gives_the_lissage_targets_and_is_converted_once(session):
    form = {"conversion.methode": "globale", "conversion.annees": "3"}
    assert session.update(form).errors == {}
    assert session.scenario.conversion.methode == "globale" and session.scenario.conversion.annees == 3
    separate = plan_instance(apply_scenario(session.base, session.scenario), duals=False)
    assert _dwellings(session.result) == _dwellings(separate)
    assert _dwellings(session.result) != _dwellings(session.base_result)
    session.update({**form, "regles.prefet_taux": "25"})
    assert list(session._conversions) == [("globale", 3)]  # the stock conversion is kept


def test_bad_input_keeps_the_last_good_plan(session):
    session.update({"regles.prefet_taux": "25"})
    before = _dwellings(session.result)
    update = session.update({"regles.prefet_taux": "45"})
    assert update.comparison is None and "regles.prefet_taux" in update.errors
    assert _dwellings(session.result) == before


def test_saved_scenario_is_what_comparer_reads_and_export_writes_the_minutes(session):
    digest = _digest(EXEMPLE)
    session.update({"nom": "Préfet à 25 %", "regles.prefet_taux": "25", "reservataires.mel.financement_apporte": "oui"})
    path = session.save()
    assert path.name == "prefet_a_25.toml"
    saved = load_scenario(path)
    assert saved.nom == "Préfet à 25 %" and saved.regles == {"prefet_taux": 0.25}
    assert saved.base_path().resolve() == EXEMPLE.resolve()
    again = plan_instance(apply_scenario(load(EXEMPLE), saved), duals=False)
    assert _dwellings(again) == _dwellings(session.result)
    folder, names = session.export()
    assert {"comparaison.html", "comparaison.xlsx"} <= set(names)
    assert "Préfet à 25 %" in (folder / "comparaison.html").read_text(encoding="utf-8")
    assert _digest(EXEMPLE) == digest  # the instance files are never written


def test_server_answers_errors_and_results_and_serves_only_its_own_files(session):
    client = TestClient(create_app(session, token="t"), base_url="http://127.0.0.1", headers={"X-Jeton": "t"})
    page = client.get("/")
    assert page.status_code == 200 and 'name="regles.prefet_taux"' in page.text
    assert client.post("/api/plan", json={"regles.prefet_taux": "45"}).json() == {
        "erreurs": {"regles.prefet_taux": "au plus 30 % (CCH R.441-5-2)"}}
    assert "Qui gagne, qui perd" in client.post("/api/plan", json={"regles.prefet_taux": "25"}).json()["html"]
    refused = client.post("/api/plan", content=b"pas du JSON", headers={"Content-Type": "application/json"})
    assert refused.status_code == 400 and refused.json()["message"].startswith("Requête refusée : JSON illisible")
    assert client.get("/fichiers/../../etc/passwd").status_code == 404
    saved = client.post("/api/enregistrer", json={"nom": "Essai", "regles.prefet_taux": "28"}).json()
    assert client.get(saved["lien"]).text.startswith("# Scénario de négociation")


def test_cli_refuses_an_output_folder_inside_the_instance(tmp_path):
    from typer.testing import CliRunner

    from flux_opt.cli.main import app

    copy = tmp_path / "exemple"
    shutil.copytree(EXEMPLE, copy)
    result = CliRunner().invoke(app, ["negocier", str(copy), "--sortie", str(copy / "neg"), "--sans-navigateur"])
    assert result.exit_code == 2
    assert not (copy / "neg").exists()


def test_cli_says_in_french_when_the_port_is_taken(tmp_path):
    from typer.testing import CliRunner

    from flux_opt.cli.main import app
    from flux_opt.negotiation.live.app import bind

    with bind(0) as taken:
        port = taken.getsockname()[1]
        taken.listen()
        result = CliRunner().invoke(app, ["negocier", str(EXEMPLE), "--port", str(port), "--sans-navigateur",
                                          "--sortie", str(tmp_path / "neg")])
    assert result.exit_code == 2
    assert f"Le port {port} est déjà utilisé" in result.output.replace("\n", " ")


# --------------------------------------------------------------------------- a real browser

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--no-first-run", "--disable-component-update", "--disable-sync", "--window-size=1400,1800")


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and DRIVER):
        pytest.skip("chromium et chromium-driver absents (.ci/run les installe)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profil'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def _wait(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("la page n'a pas changé à temps")


def test_page_in_a_real_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By

    session = Session(EXEMPLE, tmp_path / "sortie")
    digest = _digest(EXEMPLE)
    server, thread, url = start_in_background(session)
    try:
        browser.get(url)

        # Read through scripts: the results panel is replaced on each change (no stale elements).
        def gains():
            return browser.execute_script(
                "return [...document.querySelectorAll('#gains tbody tr')].map(r => r.innerText)")

        def bar(serie, reservataire):
            css = f'rect.barre[data-serie="{serie}"][data-reservataire^="{reservataire}"]'
            return float(browser.execute_script(f"return document.querySelector('{css}').dataset.valeur"))

        before, prefet = gains(), bar("Scénario", "Préfet du Nord (contingent")
        rate = browser.find_element(By.NAME, "regles.prefet_taux")
        rate.clear()
        rate.send_keys("25")
        _wait(lambda: gains() != before)
        assert bar("Scénario", "Préfet du Nord (contingent") < prefet  # the chart moved
        assert bar("base", "Préfet du Nord (contingent") == prefet  # the base stays beside it
        assert any("-" + str(int(prefet - bar("Scénario", "Préfet du Nord (contingent"))) in row.split("\t")
                   for row in gains())
        assert any("le taux du préfet passe de 30 % à 25 %" in row for row in gains())  # and why

        rate.clear()
        rate.send_keys("45")
        error = browser.find_element(By.CSS_SELECTOR, '.erreur[data-pour="regles.prefet_taux"]')
        _wait(lambda: error.text)
        assert error.text == "au plus 30 % (CCH R.441-5-2)"
        rate.clear()
        rate.send_keys("25")
        _wait(lambda: error.text == "")

        name = browser.find_element(By.NAME, "nom")
        name.clear()
        name.send_keys("Préfet à 25 %")
        browser.find_element(By.ID, "enregistrer").click()
        _wait(lambda: "Scénario enregistré" in browser.find_element(By.ID, "message").text)
        saved = load_scenario(tmp_path / "sortie" / "prefet_a_25.toml")
        assert saved.regles == {"prefet_taux": 0.25}
        assert _digest(EXEMPLE) == digest
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def test_the_page_shows_the_simulated_year_of_base_and_scenario(tmp_path):
    from flux_opt.plan.evaluation import evaluate_result

    session = Session(EXEMPLE, tmp_path / "sortie", simulate=lambda i, r: evaluate_result(i, r, tirages=5))
    assert "Année simulée (moyenne)" in session.year["base"].columns
    lettings = session.year["base"].query("Indicateur == 'attributions'")
    assert len(lettings) and (lettings["Année simulée (moyenne)"].astype(float) >= 0).all()


def test_the_page_holds_the_law_and_says_when_it_is_explored_outside_it(tmp_path):
    """A base instance with prefet_taux = 0.45: the base plan is held to the law (113) and the page
    shows the warning `verifier` shows; a rate above the law is refused unless the negotiator ticks
    « Explorer au-delà des maxima légaux », and then the page says the plan is not a legal plan."""
    import shutil

    folder = tmp_path / "instance"
    shutil.copytree(EXEMPLE, folder)
    toml = folder / "instance.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("prefet_taux = 0.30 ", "prefet_taux = 0.45 "),
                    encoding="utf-8")
    session = Session(folder, tmp_path / "sortie")
    assert sum(_dwellings(session.base_result)[r] for r in ("prefet", "prefet_agents")) == 113
    client = TestClient(create_app(session, token="t"), base_url="http://127.0.0.1", headers={"X-Jeton": "t"})
    page = client.post("/api/plan", json={"regles.prioritaires_min": "24"}).json()["html"]
    assert "45,0 % dépasse le maximum légal de 30,0 %" in page and "le plan s&#39;en tient au maximum légal" in page
    assert 'class="hors-cadre"' not in page
    assert client.post("/api/plan", json={"regles.prefet_taux": "40"}).json() == {
        "erreurs": {"regles.prefet_taux": "au plus 30 % (CCH R.441-5-2)"}}
    explored = client.post("/api/plan", json={"regles.prefet_taux": "40", "regles.hors_cadre_legal": "oui"}).json()
    assert 'class="hors-cadre"' in explored["html"] and "PAS UN PLAN LÉGAL" in explored["html"]
    assert sum(_dwellings(session.result)[r] for r in ("prefet", "prefet_agents")) == 151  # ⌊0,40 × 379⌋
