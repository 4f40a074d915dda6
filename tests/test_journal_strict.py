"""Journal commands as strict as the plan: dates, encodings, empty files, unknown
réservataires, out-of-order events — a French refusal naming the right line, and the
journal byte-identical afterwards; delays of the conventions and returns to the bailleur."""

from __future__ import annotations

from datetime import date

import pytest
from typer.testing import CliRunner

from flux_opt.cli.main import app
from flux_opt.year.conventions import Contexte, Convention
from flux_opt.year.journal.events import COLONNES, EvenementRefuse, JournalInvalide
from flux_opt.year.journal.storage import append_event, append_events, read_journal
from flux_opt.year.bilan import bilan_du_plan
from flux_opt.year.suivi import count_points, counting_rules_of, suivi
from journal_fixtures import ecrire_plan

runner = CliRunner()
ENTETE = ",".join(COLONNES)
RESERVATAIRES = ["action_logement", "bailleur", "prefet", "ville_lille"]


def ligne(jour, quoi, lid, reservataire="", commentaire="", segment=True):
    seg = "59350,,non,T3,PLUS," if segment else ",,,,,"
    return f"{jour},{quoi},{lid},{seg},{reservataire},,,,,,{commentaire}"


def ecrire(chemin, lignes, encodage="utf-8", fin="\n"):
    chemin.write_bytes((fin.join([ENTETE, *lignes]) + fin).encode(encodage))
    return chemin


@pytest.fixture
def plan(tmp_path):
    return ecrire_plan(tmp_path / "plan")


def test_french_dates_are_read_day_first(tmp_path):
    chemin = ecrire(tmp_path / "j.csv", [ligne("07/01/2027", "liberation", "L1"),
                                         ligne("08/01/2027 14:30", "proposition", "L1", "prefet", segment=False)])
    df = read_journal(chemin)
    assert [d.isoformat() for d in df["horodatage"]] == ["2027-01-07T00:00:00", "2027-01-08T14:30:00"]
    refuse = ecrire(tmp_path / "k.csv", [ligne("2027-01-07", "liberation", "L1"),
                                         ligne("31/02/2027", "proposition", "L1", "prefet", segment=False)])
    with pytest.raises(JournalInvalide, match=r"k\.csv, ligne 3 : .*horodatage.*JJ/MM/AAAA"):
        read_journal(refuse)


def test_windows_1252_and_bom_journals_are_read_and_appended_in_their_encoding(tmp_path):
    cp = ecrire(tmp_path / "cp.csv", [ligne("2027-01-07", "liberation", "L1", commentaire="libéré après travaux")],
                encodage="cp1252", fin="\r\n")
    avant = cp.read_bytes()
    append_event(cp, {"horodatage": "2027-01-08", "evenement": "proposition", "logement_id": "L1",
                           "reservataire": "prefet", "commentaire": "priorité DALO"})
    apres = cp.read_bytes()
    assert apres.startswith(avant) and apres.endswith("priorité DALO\r\n".encode("cp1252"))
    assert list(read_journal(cp)["commentaire"]) == ["libéré après travaux", "priorité DALO"]
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + (ENTETE + "\n" + ligne("2027-01-07", "liberation", "L1") + "\n").encode())
    assert len(read_journal(bom)) == 1
    point_virgule = tmp_path / "pv.csv"
    point_virgule.write_text(ENTETE.replace(",", ";") + "\n" + ligne("07/01/2027", "liberation", "L1").replace(",", ";")
                             + "\n", encoding="cp1252")
    append_event(point_virgule, {"horodatage": "2027-01-09", "evenement": "proposition", "logement_id": "L1",
                                      "reservataire": "prefet"})
    assert point_virgule.read_text(encoding="cp1252").splitlines()[-1].startswith("2027-01-09;proposition;L1;")


def test_unknown_reservataire_is_refused_on_the_right_line_and_nothing_is_written(tmp_path):
    # a blank row and a comment over two lines before the bad row: naive row counting would say line 4
    chemin = ecrire(tmp_path / "j.csv", [
        ligne("2027-01-07", "liberation", "L1", commentaire='"sur deux\nlignes"'), ",,,,,,,,,,,,,,",
        ligne("2027-01-08", "proposition", "L1", "inconnu", segment=False)])
    with pytest.raises(JournalInvalide, match=r"ligne 5 : .*« reservataire ».*réservataire inconnu « inconnu »"):
        read_journal(chemin, RESERVATAIRES)
    propre = ecrire(tmp_path / "p.csv", [ligne("2027-01-07", "liberation", "L1")])
    avant = propre.read_bytes()
    with pytest.raises(EvenementRefuse, match="réservataire inconnu"):
        append_event(propre, {"horodatage": "2027-01-08", "evenement": "proposition", "logement_id": "L1",
                                   "reservataire": "inconnu"}, RESERVATAIRES)
    assert propre.read_bytes() == avant


def test_out_of_order_events_are_refused_naming_their_line(tmp_path):
    chemin = ecrire(tmp_path / "j.csv", [ligne("2027-03-01", "liberation", "L1"),
                                         ligne("2027-03-05", "proposition", "L1", "prefet", segment=False),
                                         ligne("2027-02-01", "bail_signe", "L1", segment=False)])
    with pytest.raises(JournalInvalide, match=r"ligne 4 : .*antérieur"):
        read_journal(chemin)
    avant_bail = ecrire(tmp_path / "k.csv", [ligne("2027-03-01", "bail_signe", "L1", segment=False)])
    with pytest.raises(JournalInvalide, match=r"ligne 2 : .*jamais été libéré"):
        read_journal(avant_bail)


def test_empty_journal_commands_answer_in_french(tmp_path, plan):
    vide = tmp_path / "vide.csv"
    vide.write_bytes(b"")
    sortie = runner.invoke(app, ["suivi", str(plan), str(vide)])
    assert sortie.exit_code == 2 and "aucun événement" in sortie.output and "--date" in sortie.output
    assert runner.invoke(app, ["suivi", str(plan), str(vide), "--date", "30/06/2027"]).exit_code == 0
    bilan = runner.invoke(app, ["bilan", str(plan), str(vide), "--annee", "2027", "--sortie", str(tmp_path / "b")])
    assert bilan.exit_code == 2 and "aucun événement daté de 2027" in bilan.output
    assert not (tmp_path / "b").exists()


def test_bilan_never_writes_a_file_for_an_unknown_reservataire(tmp_path, plan):
    chemin = ecrire(tmp_path / "j.csv", [ligne("2027-01-07", "liberation", "L1"),
                                         ligne("2027-01-08", "proposition", "L1", "inconnu", segment=False)])
    sortie = runner.invoke(app, ["bilan", str(plan), str(chemin), "--annee", "2027", "--sortie", str(tmp_path / "b")])
    assert sortie.exit_code == 2 and "ligne 3" in sortie.output and "inconnu" in sortie.output
    assert not (tmp_path / "b").exists()


def test_journal_ajouter_records_or_refuses_byte_identical(tmp_path, plan):
    chemin = tmp_path / "j.csv"
    commun = ["--plan", str(plan), "--logement-id", "RPLS-59350-1"]
    assert runner.invoke(app, ["journal", "ajouter", str(chemin), "liberation", *commun, "--date", "07/01/2027",
                               "--commune", "59350", "--qpv", "non", "--typologie", "T3",
                               "--financement", "PLUS"]).exit_code == 0
    avant = chemin.read_bytes()
    for refuse in (["proposition", "--reservataire", "inconnu"], ["refus"], ["bail_signe"],
                   ["proposition", "--reservataire", "prefet", "--date", "06/01/2027"]):
        sortie = runner.invoke(app, ["journal", "ajouter", str(chemin), *refuse[:1], *commun, *refuse[1:]])
        assert sortie.exit_code == 2 and "Rien n'a été écrit" in sortie.output, refuse
        assert chemin.read_bytes() == avant
    sortie = runner.invoke(app, ["journal", "ajouter", str(chemin), "proposition", *commun, "--reservataire", "prefet",
                                 "--date", "2027-01-08"])
    assert sortie.exit_code == 0 and "RPLS-59350-1" in sortie.output
    assert chemin.read_text(encoding="utf-8").splitlines()[-1].startswith("2027-01-08,proposition,RPLS-59350-1,59350")


# --------------------------------------------------------------------------- delays and returns

def contexte(decompte_al: bool) -> Contexte:
    def convention(rid, type_, gestion, decompte=False):
        return Convention(rid, rid, type_, gestion, 30, 3 if gestion == "directe" else 1, decompte, 0.25)
    conventions = {"action_logement": convention("action_logement", "action_logement", "directe", decompte_al),
                   "prefet": convention("prefet", "prefet", "deleguee"),
                   "ville_lille": convention("ville_lille", "collectivite", "directe"),
                   "bailleur": convention("bailleur", "bailleur", "directe")}
    return Contexte(2027, conventions, frozenset(), 0.25, 0.5, {})


def liberation(lid, jour):
    return {"horodatage": jour, "evenement": "liberation", "logement_id": lid, "commune": "59350", "qpv": "non",
            "typologie": "T3", "financement": "PLUS"}


def ev(quoi, lid, jour, **autres):
    return {"horodatage": jour, "evenement": quoi, "logement_id": lid, **autres}


def test_late_proposal_is_returned_to_the_bailleur_and_counted_per_the_convention(tmp_path, plan):
    chemin, delais = tmp_path / "j.csv", {"action_logement": 30, "prefet": 30}
    append_events(chemin, [
        liberation("L1", "2027-01-05"), ev("proposition", "L1", "2027-01-10", reservataire="action_logement"),
        liberation("L2", "2027-01-05"), ev("proposition", "L2", "2027-01-10", reservataire="prefet"),
        liberation("L3", "2027-01-20"), ev("proposition", "L3", "2027-01-20", reservataire="action_logement"),
        ev("candidats", "L3", "2027-02-10", candidats=1)], RESERVATAIRES, delais)
    avant = chemin.read_bytes()
    # the delay runs 30 days after the proposal, to 9 February inclusive
    with pytest.raises(EvenementRefuse, match="court jusqu'au 09/02/2027"):
        append_event(chemin, ev("retour_bailleur", "L1", "2027-02-09"), RESERVATAIRES, delais)
    assert chemin.read_bytes() == avant
    s = suivi(plan, read_journal(chemin), date(2027, 2, 15), contexte=contexte(True))
    listes = s.delais.set_index("logement_id")
    assert listes.loc["L1", "situation"] == "depasse" and listes.loc["L2", "situation"] == "depasse"
    # L3: 1 of the 3 candidates of gestion directe, delay to 19 February: running out
    assert listes.loc["L3", "situation"] == "proche" and listes.loc["L3", "jours_restants"] == 4
    append_events(chemin, [
        ev("retour_bailleur", "L1", "2027-02-10"), ev("retour_bailleur", "L2", "2027-02-10"),
        ev("proposition", "L1", "2027-02-11", reservataire="bailleur"), ev("bail_signe", "L1", "2027-03-01"),
        ev("proposition", "L2", "2027-02-11", reservataire="bailleur"), ev("bail_signe", "L2", "2027-03-01")],
        RESERVATAIRES, delais)
    df = read_journal(chemin)
    for decompte_al, attendu in ((True, {"action_logement": 1.0, "bailleur": 1.0}), (False, {"bailleur": 2.0})):
        points = count_points(df, counting_rules_of(contexte(decompte_al))).groupby("reservataire")["points"].sum()
        assert points[points > 0].to_dict() == attendu
    consolide, _ = bilan_du_plan(plan, df, 2027, contexte(True))
    retours = consolide.retours.set_index("logement_id")["decompte"].to_dict()
    assert retours == {"L1": "décompté pour le réservataire", "L2": "non décompté (droit non utilisé)"}
    ligne_al = consolide.targets.set_index("reservataire").loc["action_logement"]
    assert ligne_al["logements_decomptes"] == 1 and ligne_al["retours_bailleur"] == 1


def test_year_commands_check_their_output_folder_before_the_work(tmp_path, plan):
    chemin = ecrire(tmp_path / "j.csv", [ligne("2027-01-07", "liberation", "L1")])
    fichier = tmp_path / "pas_un_dossier"
    fichier.write_text("x", encoding="utf-8")
    for commande in (["suivi", str(plan), str(chemin), "--sortie", str(fichier)],
                     ["bilan", str(plan), str(chemin), "--annee", "2027", "--sortie", str(fichier)]):
        sortie = runner.invoke(app, commande)
        assert sortie.exit_code == 2, (commande, sortie.output)
        assert "--sortie" in sortie.output and "Erreur interne" not in sortie.output
        assert fichier.read_text(encoding="utf-8") == "x"  # nothing overwritten
    assert not list(tmp_path.glob(".*")), "no staging folder left behind"
