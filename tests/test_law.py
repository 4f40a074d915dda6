"""Plans to the letter of the law (issue 11): one test per point, with the seed figures.

The bundled example has C = 379: the préfet (agents compris) gets at most ⌊0.30 × 379⌋ = 113,
never 114; the agents at most ⌊0.05 × 379⌋ = 18.
"""

from __future__ import annotations

import json
import shutil

import openpyxl

import pandas as pd
import pytest
from typer.testing import CliRunner

from flux_opt.assiette.apportion import cap
from flux_opt.assiette.flux import compute_flux
from flux_opt.assiette.legal import convention_warnings
from flux_opt.assiette.targets import compute_targets
from flux_opt.cli.main import app
from flux_opt.input.schema import load_instance
from flux_opt.pipeline import plan_path
from flux_opt.stock.conversion import detail_conventions, pourquoi_les_methodes_different
from flux_opt.stock.lissage import spread_lissage

from checker import build_reference, check_plan
from conftest import BASE_TOML, EXEMPLE, UNIFORMITY

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def exemple_plan(tmp_path_factory):
    """The example planned once by the CLI (with its conformity table)."""
    out = tmp_path_factory.mktemp("exemple_plan")
    result = invoke("plan", EXEMPLE, "--sortie", out, "--sans-analyse")
    assert result.exit_code == 0, result.output
    return out, result.output


def copy_exemple(tmp_path, name="instance"):
    folder = tmp_path / name
    shutil.copytree(EXEMPLE, folder)
    return folder


def edit(path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new), encoding="utf-8")


# 1. Caps are caps -------------------------------------------------------------------------

def test_caps_are_floors_never_rounded_up():
    assert cap(0.30, 379) == 113 and cap(0.05, 379) == 18
    assert cap(0.30, 650) == 195  # 0.3 × 650 = 194.99999999999997: binary noise is not a dwelling less
    instance = load_instance(EXEMPLE)
    targets = compute_targets(instance, compute_flux(instance))
    assert (targets.plafond_prefet, targets.plafond_agents) == (113, 18)
    cible = targets.table.set_index("id")["cible"]
    assert cible["prefet"] + cible["prefet_agents"] == 113  # 113.7 rounded inside the cap
    assert cible["prefet_agents"] == 18  # 18.95 → 18


def test_report_prints_the_true_rate_of_the_cap(exemple_plan):
    out, _ = exemple_plan
    rules = pd.read_csv(out / "contraintes.csv").set_index("contrainte")
    assert "reçoit 113 logements, soit 29,8 % du flux annuel de 379, pour un plafond de 113 (30,0 % de 379, " \
           "arrondi à l'entier inférieur)" in rules.at["plafond_prefet", "explication"]
    assert "pour un plafond de 18 (5,0 % de 379" in rules.at["plafond_agents", "explication"]


# 2. The State contingent serves publics prioritaires ---------------------------------------

def test_prefet_attributions_all_go_to_publics_prioritaires_by_default(make_instance):
    # UNIFORMITY: the préfet must place 2 of its 6 dwellings in Roubaix, where it has no candidate.
    # With the law's default (100 %), its priority attributions (4) fall 2 short of its 6 dwellings.
    default = plan_path(make_instance(**{**UNIFORMITY, "toml": UNIFORMITY["toml"].replace(
        "prefet_prioritaires = 0", "")}))
    rows = default.contraintes.set_index(["contrainte", "portee"])
    prefet = rows.loc[("publics_prioritaires", "réservataire prefet")]
    assert prefet["statut"] == "violee" and prefet["marge"] == pytest.approx(-2)
    assert default.exit_code == 3
    lowered = plan_path(make_instance(**UNIFORMITY))  # prefet_prioritaires = 0 in the convention
    assert lowered.exit_code == 0


def test_agents_exempt_others_keep_25_percent(exemple_plan):
    out, _ = exemple_plan
    prio = pd.read_csv(out / "contraintes.csv").query("contrainte == 'publics_prioritaires'")
    by_scope = dict(zip(prio["portee"], prio["explication"]))
    assert "réservataire prefet_agents" not in by_scope
    assert "minimum de 100,0 %" in by_scope["réservataire prefet"]
    assert "minimum de 25,0 %" in by_scope["réservataire action_logement"]


# 3. Collectivités together -----------------------------------------------------------------

COLLECTIVITES = dict(  # the two communes of UNIFORMITY (10 dwellings each, one EPCI), no préfet
    toml=UNIFORMITY["toml"], parc=UNIFORMITY["parc"],
    reservataires="""
    id,nom,type,territoire,taux
    roubaix,Ville de Roubaix,collectivite,59512,0.10
    mel,MEL,collectivite,200093201,0.10
    bailleur,Bailleur,bailleur,,
    """,
    demande="""
    reservataire,commune,epci,typologie,quartile,prioritaire,demandeurs
    roubaix,59512,,T2,q1,oui,50
    mel,59512,,T2,q1,oui,50
    bailleur,,200093201,T2,q234,non,100
    """)


def test_a_commune_and_its_epci_cannot_stack_their_shares(make_instance, tmp_path):
    # Roubaix 10 % of 10 = 1, MEL 10 % of 20 = 2; both want Roubaix. Alone, each cap holds with
    # 3 in Roubaix; together they may have ⌊0.2 × 10⌋ = 2 there, so one MEL dwelling goes to Lille.
    folder = make_instance(**COLLECTIVITES)
    result = plan_path(folder)
    assert result.exit_code == 0
    in_roubaix = result.plan.query("commune == '59512' and reservataire in ['roubaix', 'mel']")
    assert in_roubaix["logements"].sum() == 2
    rows = result.contraintes.set_index(["contrainte", "portee"])
    assert rows.loc[("plafond_collectivite", "territoire de roubaix"), "statut"] == "saturee"
    from flux_opt.report.exports import write_plan
    write_plan(result, tmp_path / "plan")
    assert check_plan(folder, tmp_path / "plan") == []


# 4. Article 5 on one perimeter ---------------------------------------------------------------

def test_article_5_divides_by_the_parc_of_the_same_territory(make_instance):
    # AL holds 50 reserved dwellings in Roubaix (parc 100 there, 400 in the département):
    # 50 / 100 × flux of Roubaix (10) = 5, not 50 / 400 × 10 = 1.25.
    folder = make_instance(**{**COLLECTIVITES, "reservataires": """
        id,nom,type,territoire,logements_reserves
        al,Action Logement,action_logement,59512,50
        bailleur,Bailleur,bailleur,,
        """, "parc": """
        commune,epci,qpv,typologie,financement,logements,liberations
        59350,200093201,non,T2,PLUS,300,10
        59512,200093201,non,T2,PLUS,100,10
        """, "demande": "reservataire,commune,epci,typologie,quartile,prioritaire,demandeurs\n"})
    instance = load_instance(folder)
    table = compute_targets(instance, compute_flux(instance)).table.set_index("id")
    assert table.at["al", "brut"] == pytest.approx(5.0)
    assert table.at["al", "source"] == "article_5"


# 5. Exclusions never stop the plan -----------------------------------------------------------

def test_an_exclusion_beyond_its_releases_is_clipped_and_reported(tmp_path):
    folder = copy_exemple(tmp_path)
    edit(folder / "exclusions.csv", "anru,59512,,oui,,12", "anru,59512,,oui,,500")
    out = tmp_path / "plan"
    result = invoke("plan", folder, "--sortie", out, "--sans-analyse")
    assert result.exit_code == 0, result.output  # clipping alone is not exit 2 nor 3
    assert "Exclusions écrêtées" in result.output
    rules = pd.read_csv(out / "contraintes.csv")
    clipped = rules.loc[rules["contrainte"] == "exclusions"]
    assert set(clipped["statut"]) == {"ecretee"}
    [clip] = clipped.loc[clipped["portee"].str.startswith("exclusions.csv ligne 4 : anru 59512 QPV")].to_dict("records")
    assert "500,0 logements exclus pour" in clip["explication"] and "écrêtés" in clip["explication"]
    assert "Exclusions écrêtées aux libérations prévues" in (out / "rapport.html").read_text(encoding="utf-8")


# 6. verifier warns on convention inputs above a legal cap -----------------------------------

def test_verifier_warns_with_rule_and_figures(tmp_path):
    folder = copy_exemple(tmp_path)
    edit(folder / "instance.toml", "prefet_taux = 0.30 ", "prefet_taux = 0.35 ")
    edit(folder / "reservataires.csv", "ville_roubaix,Ville de Roubaix,collectivite,59512,0.20",
         "ville_roubaix,Ville de Roubaix,collectivite,59512,0.25")
    result = invoke("verifier", folder)
    assert result.exit_code == 0, result.output
    assert "Avertissements (règles légales) : 2" in result.output
    instance = load_instance(folder)
    flux = compute_flux(instance)
    warnings = {(w.fichier, w.ligne, w.champ): w.message
                for w in convention_warnings(instance, flux, compute_targets(instance, flux))}
    assert warnings[("instance.toml", None, "regles.prefet_taux")] == \
        "35,0 % dépasse le maximum légal de 30,0 % (CCH R.441-5-2) — le plan s'en tient au maximum légal"
    targets = compute_targets(instance, flux)
    assert targets.plafond_prefet == 113  # the préfet's default target takes the law's 30 %, not 35 %
    cible = targets.table.set_index("id")["cible"]
    assert cible["prefet"] + cible["prefet_agents"] == 113
    roubaix = warnings[("reservataires.csv", 4, "taux")]  # 25 % of Roubaix's 47 = 11.75 > 9.4
    assert "(ville_roubaix) : 11,8 logements demandés" in roubaix and "plafond de 9 (20,0 % de 47" in roubaix
    assert cible["ville_roubaix"] == 9  # held to ⌊20 % × 47⌋


# 7. controler: an independent conformity check ----------------------------------------------

def test_controler_passes_the_plan_and_catches_a_114th_prefet_dwelling(exemple_plan, tmp_path):
    out, output = exemple_plan
    assert "lignes vérifiées : toutes respectées" in output
    assert (out / "conformite.csv").is_file()
    assert "Conformité aux règles légales" in (out / "rapport.html").read_text(encoding="utf-8")
    ok = invoke("controler", out, EXEMPLE, "--sortie", tmp_path / "ok.csv")
    assert ok.exit_code == 0, ok.output
    table = pd.read_csv(tmp_path / "ok.csv")
    assert list(table.columns) == ["regle", "portee", "source", "base", "limite", "valeur", "respectee"]
    # A spreadsheet gives the préfet one more dwelling, taken from the bailleur: 114 > 113.
    broken = tmp_path / "tableur"
    broken.mkdir()
    plan = pd.read_csv(out / "plan.csv", dtype=str)
    i = plan.index[(plan["reservataire"] == "bailleur") & (plan["logements"].astype(int) > 0)][0]
    plan.loc[i, "logements"] = str(int(plan.loc[i, "logements"]) - 1)
    extra = plan.loc[[i]].assign(reservataire="prefet", logements="1")
    pd.concat([plan, extra]).to_csv(broken / "plan.csv", index=False)
    result = invoke("controler", broken, EXEMPLE)
    assert result.exit_code == 3, result.output
    table = pd.read_csv(broken / "conformite.csv").set_index("regle")
    assert table.at["plafond_prefet", "valeur"] == 114 and table.at["plafond_prefet", "respectee"] == "non"
    assert table.at["plafond_prefet", "limite"].startswith("≤ 113 (30 % de 379")
    # no attributions.csv: the rules on attributions are recomputed from the dwellings, never unchecked
    assert set(table.loc["publics_prioritaires", "respectee"]) <= {"oui", "non"}
    assert table.loc["publics_prioritaires", "valeur"].notna().all()


# 8. convertir never misleads -------------------------------------------------------------------

def test_convertir_shows_exactly_the_years_asked(tmp_path):
    result = invoke("convertir", EXEMPLE, "--annees", 4, "--sortie", tmp_path)
    assert result.exit_code == 0, result.output
    assert "2027–2030" in result.output and "2031" not in result.output
    refused = invoke("convertir", EXEMPLE, "--annees", 2)
    assert refused.exit_code == 2 and "au moins 3 ans" in " ".join(refused.output.split())
    assert "[conversion] methode" in " ".join(invoke("convertir", "--help").output.split())


def test_lissage_fills_later_years_before_overloading_one():
    # 300 owed over 2 years (duration), capacity 100 a year over a 3-year table: 100/100 then the
    # rest in the third year, instead of 150/150 above capacity and an empty third year.
    volumes = pd.DataFrame({"reservataire": ["als"], "volume_du": [300.0], "annees": [2]})
    lissage = spread_lissage(volumes, {a: 1000.0 for a in (2027, 2028, 2029)}, horizon=3, part_max=0.1, annee_debut=2027)
    assert lissage.objectifs.loc["als"].tolist() == [100, 100, 100]
    assert lissage.realisable
    assert any("reportés en 2029" in n for n in lissage.notes)


def test_convertir_explains_why_the_two_methods_differ():
    # Seed: 600 DS × 6 years + 400 DS × 15 years at 10 %: 960 per convention, 1 000 × 10.5 × 10 % = 1 050.
    conventions = pd.DataFrame({"reservataire": ["als", "als"], "convention": ["C1", "C2"],
                                "droits_de_suite": ["600", "400"], "duree_restante": ["6", "15"]})
    text = pourquoi_les_methodes_different(detail_conventions(conventions, 0.10, 2025), 0.10)
    assert "Méthode globale : 1050,0 relogements ; par convention : 960,0" in text
    assert "durée restante moyenne" in text and "als" in text


# Floors never contradict caps (issue 21) -------------------------------------------------

def state_parc(lines: str, agents: bool = True, prefet_taux: float = 0.30, lecture: str = "taux") -> dict:
    """A one-EPCI parc (`lines`: commune qpv liberations …), the State (agents optional) and the
    bailleur, with pools deep enough that only the legal rules decide."""
    words = lines.split()
    rows = [words[i:i + 3] for i in range(0, len(words), 3)]
    parc = "commune,epci,qpv,typologie,financement,logements,liberations\n" + "\n".join(
        f"{c},200093201,{q},T3,PLUS,{10 * int(n)},{n}" for c, q, n in rows)
    demande = "reservataire,commune,epci,typologie,quartile,prioritaire,demandeurs\n" + "\n".join(
        f"{r},,200093201,T3,{k},{p},5000" for r, k, p in [("prefet", "q1", "oui"), ("prefet_agents", "q234", "non"),
                                                            ("bailleur", "q234", "non"), ("bailleur", "q1", "oui")])
    reservataires = "id,nom,type\nprefet,Préfet,prefet\n" + ("agents,Agents,prefet_agents\n" if agents else "") \
        + "bailleur,Bailleur,bailleur\n"
    toml = BASE_TOML + f"""
    [regles]
    prefet_taux = {prefet_taux}
    prefet_hors_qpv_lecture = "{lecture}"
    """
    return dict(toml=toml, parc=parc, reservataires=reservataires,
                demande=demande.replace("prefet_agents,", "agents," if agents else "nobody,"))


def plan_of(make_instance, tmp_path, **tables):
    folder = make_instance(**tables)
    out = tmp_path / f"out_{folder.name}"
    done = invoke("plan", folder, "--sortie", out, "--sans-analyse")
    return folder, out, done


def state_hors_qpv(out) -> int:
    plan = pd.read_csv(out / "plan.csv", dtype={"commune": str})
    state = plan.loc[plan["reservataire"].isin(["prefet", "agents"])]
    return int(state.loc[state["qpv"] == "non", "logements"].sum())


@pytest.mark.parametrize("lecture", ["taux", "part"])
def test_a_parc_without_qpv_plans_at_the_cap(make_instance, tmp_path, lecture):
    """Flux 209, no QPV: the cap allows ⌊0,30 × 209⌋ = 62 and the floor asks ⌊0,30 × 209⌋ = 62
    (it asked ⌈62,7⌉ = 63 and a legal plan ended exit 3)."""
    folder, out, done = plan_of(make_instance, tmp_path, **state_parc("59350 non 209", lecture=lecture))
    assert done.exit_code == 0, done.output
    assert state_hors_qpv(out) == 62
    rules = pd.read_csv(out / "contraintes.csv").set_index("contrainte")
    assert rules.at["prefet_hors_qpv", "statut"] != "violee"
    conf = pd.read_csv(out / "conformite.csv").set_index("regle")
    assert conf.at["prefet_hors_qpv", "respectee"] == "oui"
    assert check_plan(folder, out) == []
    again = invoke("controler", out, folder)
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize("lecture", ["taux", "part"])
def test_an_all_qpv_parc_has_no_hors_qpv_floor(make_instance, tmp_path, lecture):
    folder, out, done = plan_of(make_instance, tmp_path, **state_parc("59350 oui 120 59512 oui 89", lecture=lecture))
    assert done.exit_code == 0, done.output
    assert state_hors_qpv(out) == 0
    assert check_plan(folder, out) == []


def test_the_floor_follows_the_state_s_rate_in_a_mixed_parc(make_instance, tmp_path):
    """Préfet at 25 %: 100 hors QPV and 100 in QPV, C = 200, the State gets ⌊0,25 × 200⌋ = 50 and
    its hors-QPV floor is ⌊25 % × 100⌋ = 25 (not 30 % = 30, which left 20 % in QPV)."""
    folder, out, done = plan_of(make_instance, tmp_path,
                                **state_parc("59350 non 100 59350 oui 100", prefet_taux=0.25))
    assert done.exit_code == 0, done.output
    rules = pd.read_csv(out / "contraintes.csv").set_index("contrainte")
    assert "minimum de 25 logements" in rules.at["prefet_hors_qpv", "explication"]
    conf = pd.read_csv(out / "conformite.csv").set_index("regle")
    assert conf.at["prefet_hors_qpv", "limite"].startswith("≥ 25 (25 % de 100")
    assert check_plan(folder, out) == []


def test_a_qpv_only_commune_lowers_the_floor_to_what_uniformity_leaves(make_instance, tmp_path):
    """Commune A all QPV (flux 100), commune B all hors QPV (flux 10): the State (⌊0,30 × 110⌋ = 33)
    must keep 29 to 31 dwellings in A (uniformity 30 ± 1) and can place at most 3 + 1 = 4 in B.
    Reading « part »: 30 % of 33 = ⌈9,9⌉ = 10 hors QPV asked, at most 4 possible: the floor is 4."""
    folder, out, done = plan_of(make_instance, tmp_path, **state_parc("59350 oui 100 59512 non 10", lecture="part"))
    assert done.exit_code == 0, done.output
    assert state_hors_qpv(out) == 4
    conf = pd.read_csv(out / "conformite.csv").set_index("regle")
    assert conf.at["prefet_hors_qpv", "limite"].startswith("≥ 4")
    assert check_plan(folder, out) == []


def test_the_state_gets_its_whole_cap_when_the_agents_round_down(make_instance):
    """C = 217: agents 5 % = 10,85 → 10 (⌊10,85⌋, their cap), the préfet 65 − 10 = 55, the State
    ⌊0,30 × 217⌋ = 65 (it got 54 + 10 = 64, the préfet's 65,1 − 10,85 = 54,25 rounded alone)."""
    folder = make_instance(**state_parc("59350 non 117 59512 oui 100"))
    instance = load_instance(folder)
    targets = compute_targets(instance, compute_flux(instance))
    cible = targets.table.set_index("id")["cible"]
    assert (cible["agents"], cible["prefet"], cible["bailleur"]) == (10, 55, 152)
    assert targets.plafond_prefet == 65


# Legal caps prevail over inputs (issue 21) -----------------------------------------------

def test_a_rate_above_the_law_is_held_to_it_and_said(tmp_path):
    """prefet_taux = 0.45 in instance.toml: the State gets ⌊0,30 × 379⌋ = 113 (it got 163 and the
    cap was listed as « cannot be held »); `plan` prints the warning `verifier` prints, and the
    plan says it in one sentence (resume.json, terminal, report)."""
    folder = copy_exemple(tmp_path)
    edit(folder / "instance.toml", "prefet_taux = 0.30 ", "prefet_taux = 0.45 ")
    out = tmp_path / "out"
    done = invoke("plan", folder, "--sortie", out, "--sans-analyse")
    assert done.exit_code == 0, done.output
    plan = pd.read_csv(out / "plan.csv")
    assert plan.loc[plan["reservataire"].isin(["prefet", "prefet_agents"]), "logements"].sum() == 113
    checked = invoke("verifier", folder).output
    said = "45,0 % dépasse le maximum légal de 30,0 % (CCH R.441-5-2) — le plan s'en tient au maximum légal"
    flat = " ".join(done.output.split())
    assert said in flat and "regles.prefet_taux" in checked and "s'en tient au maximum" in checked
    assert "ramenés à la loi" in flat
    resume = json.loads((out / "resume.json").read_text(encoding="utf-8"))
    assert resume["hors_cadre_legal"] is False and "ramenés à la loi" in resume["cadre_legal"]
    assert "ramenés à la loi" in (out / "rapport.html").read_text(encoding="utf-8")
    assert "PAS UN PLAN LÉGAL" not in (out / "rapport.html").read_text(encoding="utf-8")
    rules = pd.read_csv(out / "contraintes.csv")
    assert "violee" not in set(rules["statut"])


def test_exploring_outside_the_law_says_it_on_every_output(tmp_path):
    folder = copy_exemple(tmp_path)
    edit(folder / "instance.toml", "prefet_taux = 0.30 ", "prefet_taux = 0.45 ")
    out = tmp_path / "out"
    done = invoke("plan", folder, "--sortie", out, "--sans-analyse", "--hors-cadre-legal")
    plan = pd.read_csv(out / "plan.csv")
    assert plan.loc[plan["reservataire"].isin(["prefet", "prefet_agents"]), "logements"].sum() == 170  # ⌊0,45 × 379⌋
    assert "CE PLAN N'EST PAS UN PLAN LÉGAL" in " ".join(done.output.split())
    resume = json.loads((out / "resume.json").read_text(encoding="utf-8"))
    assert resume["hors_cadre_legal"] is True and resume["cadre_legal"].startswith("CE PLAN N'EST PAS UN PLAN LÉGAL")
    assert 'class="hors-cadre"' in (out / "rapport.html").read_text(encoding="utf-8")
    book = openpyxl.load_workbook(out / "rapport.xlsx", read_only=True)
    for sheet in book.worksheets:
        assert str(next(sheet.iter_rows(max_row=1, values_only=True))[0]).startswith("CE PLAN N'EST PAS"), sheet.title
    conf = pd.read_csv(out / "conformite.csv").set_index("regle")
    assert conf.at["plafond_prefet", "respectee"] == "non"  # the independent check holds to the law


def test_comparer_prints_the_warning_of_a_scenario_above_the_law(tmp_path):
    scenario = tmp_path / "p45.toml"
    scenario.write_text('nom = "Préfet à 45 %"\n[regles]\nprefet_taux = 0.45\n', encoding="utf-8")
    explore = tmp_path / "p45hc.toml"
    explore.write_text('nom = "Exploration"\n[regles]\nprefet_taux = 0.45\nhors_cadre_legal = true\n', encoding="utf-8")
    out = tmp_path / "cmp"
    done = invoke("comparer", EXEMPLE, scenario, explore, "--sortie", out, "-p", "1")
    assert done.exit_code == 0, done.output
    flat = " ".join(done.output.split())
    assert ("Avertissement (Préfet à 45 %) : instance.toml, champ « regles.prefet_taux » : 45,0 % dépasse le "
            "maximum légal de 30,0 % (CCH R.441-5-2) — le plan s'en tient au maximum légal") in flat
    assert "Avertissement (Exploration) : instance.toml, champ « regles.prefet_taux » : 45,0 %" in flat
    logements = pd.read_csv(out / "logements.csv").set_index("reservataire")
    assert logements.loc[["prefet", "prefet_agents"], "Préfet à 45 %"].sum() == 113
    assert logements.loc[["prefet", "prefet_agents"], "Exploration"].sum() == 170
    page = (out / "comparaison.html").read_text(encoding="utf-8")
    assert 'class="hors-cadre"' in page and "Exploration explore(nt)" in page
    book = openpyxl.load_workbook(out / "comparaison.xlsx", read_only=True)
    for sheet in book.worksheets:
        assert str(next(sheet.iter_rows(max_row=1, values_only=True))[0]).startswith("CE N'EST PAS UN PLAN LÉGAL")


# One tolerance (issue 21) ----------------------------------------------------------------

def tolerance_case(rate: float) -> dict:
    """10 hors-QPV dwellings in an EPCI with a CIA, 2 Q1 candidates (transport model: every
    candidate accepts): Q1 attributions hors QPV are at most 2 against rate × 10."""
    return dict(toml=BASE_TOML + f"""
    [regles]
    prioritaires_min = 0
    [cia]
    epci = ["200093201"]
    q1_hors_qpv = {rate}
    [demande]
    modele = "transport"
    """, parc="""
    commune,epci,qpv,typologie,financement,logements,liberations
    59350,200093201,non,T2,PLUS,100,10
    """, reservataires="""
    id,nom,type
    bailleur,Bailleur,bailleur
    """, demande="""
    reservataire,commune,epci,typologie,quartile,prioritaire,demandeurs
    bailleur,59350,,T2,q1,non,2
    bailleur,59350,,T2,q234,non,50
    """)


@pytest.mark.parametrize("rate, held", [(0.25, True), (0.26, False)])
def test_a_share_is_missed_only_beyond_half_an_attribution(make_instance, tmp_path, rate, held):
    """25 % of 10 = 2,5 Q1 attributions for 2 possible: 0,5 short, within half an attribution:
    « tenue » everywhere (model status, contraintes.csv, exit code, conformite.csv, controler);
    26 % = 2,6: 0,6 short, « non tenue » everywhere."""
    folder, out, done = plan_of(make_instance, tmp_path, **tolerance_case(rate))
    assert done.exit_code == (0 if held else 3), done.output
    rules = pd.read_csv(out / "contraintes.csv").set_index("contrainte")
    assert (rules.at["cia_hors_qpv_q1", "statut"] == "violee") is not held
    conf = pd.read_csv(out / "conformite.csv").set_index("regle")
    assert conf.at["cia_hors_qpv_q1", "respectee"] == ("oui" if held else "non")
    assert conf.at["cia_hors_qpv_q1", "valeur"] == 2.0
    assert invoke("controler", out, folder).exit_code == (0 if held else 3)


def test_the_conformity_table_shows_values_rounded_like_their_bounds(make_instance):
    """47,9993 expected attributions against « ≥ 48 » read 48,0 « oui » (it showed 47,9993 beside ≥ 48)."""
    from flux_opt.conformity.check import _line
    from flux_opt.vocabulary import missed

    line = _line("cia_hors_qpv_q1", "EPCI", "CCH L.441-1", 192, "≥", 48.0, 47.9993, on_attributions=True)
    assert (line["valeur"], line["respectee"], line["limite"]) == (48.0, "oui", "≥ 48")
    assert _line("plafond_prefet", "préfet", "CCH", 379, "≤", 113, 114)["respectee"] == "non"  # a whole dwelling
    assert not missed(0.5, on_attributions=True) and missed(0.51, on_attributions=True)
    assert missed(1.0, on_attributions=False) and not missed(1e-9, on_attributions=False)


# A checker that trusts nothing (issue 21) ------------------------------------------------

def tampered(out, tmp_path, name: str):
    """A copy of the example's plan folder (plan.csv, attributions.csv) to tamper with."""
    folder = tmp_path / name
    folder.mkdir()
    for f in ("plan.csv", "attributions.csv"):
        shutil.copy(out / f, folder / f)
    return folder


# attributions.csv tampered with (Q1 lines × 10): tests/test_controler_rederive.py


def test_controler_refuses_rows_that_do_not_fit_the_instance(exemple_plan, tmp_path):
    out, _ = exemple_plan
    folder = tampered(out, tmp_path, "fantome")
    plan = pd.read_csv(folder / "plan.csv", dtype=str)
    ghost = plan.iloc[[0]].assign(reservataire="fantome")
    unknown = plan.iloc[[1]].assign(commune="99999")
    pd.concat([plan, ghost, unknown]).to_csv(folder / "plan.csv", index=False)
    done = runner.invoke(app, ["controler", str(folder), str(EXEMPLE)], terminal_width=250)
    assert done.exit_code == 2, done.output
    flat = " ".join(done.output.replace("│", " ").split())
    assert "« fantome »" in flat and "« 99999 »" in flat and "reservataire" in flat and "commune" in flat
    assert f" {len(plan) + 2} " in flat and f" {len(plan) + 3} " in flat  # the lines of the two rows
    ev = invoke("evaluer", folder, "--instance", EXEMPLE, "--tirages", "2")
    assert ev.exit_code == 2 and "99999" in ev.output and "Erreur interne" not in ev.output


def test_controler_reads_a_plan_csv_file_saved_by_french_excel(exemple_plan, tmp_path):
    """`controler sortie/plan.csv …` (a file, not a folder), re-saved by French Excel: `;`, decimal
    comma, Windows-1252: the same table as the plan as written."""
    out, _ = exemple_plan
    folder = tampered(out, tmp_path, "excel")
    for name in ("plan.csv", "attributions.csv"):
        frame = pd.read_csv(out / name, dtype=str)
        text = frame.to_csv(index=False, sep=";").replace(".", ",")  # every decimal point, as Excel writes
        (folder / name).write_bytes(text.encode("cp1252"))
    done = invoke("controler", folder / "plan.csv", EXEMPLE, "--sortie", tmp_path / "excel.csv")
    assert done.exit_code == 0, done.output
    invoke("controler", out, EXEMPLE, "--sortie", tmp_path / "written.csv")
    assert pd.read_csv(tmp_path / "excel.csv").equals(pd.read_csv(tmp_path / "written.csv"))
    ev = invoke("evaluer", folder / "plan.csv", "--instance", EXEMPLE, "--tirages", "2")
    assert ev.exit_code == 0, ev.output
