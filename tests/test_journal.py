"""The events journal: validation on append, atomicity, reading back."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flux_opt.year.journal.events import COLONNES, EvenementRefuse, JournalInvalide
from flux_opt.year.journal.storage import append_event, append_events, read_journal, check_journal
from flux_opt.year.journal.views import cycle_states


def liberation(lid="L1", jour="2027-01-10", **autres):
    return {"horodatage": jour, "evenement": "liberation", "logement_id": lid, "commune": "59350",
            "qpv": "non", "typologie": "T3", "financement": "PLUS", "periode_construction": "1975-1989",
            **autres}


def ev(quoi, jour, lid="L1", **autres):
    return {"horodatage": jour, "evenement": quoi, "logement_id": lid, **autres}


def parcours_complet(lid="L1"):
    return [
        liberation(lid),
        ev("proposition", "2027-01-11", lid, reservataire="prefet"),
        ev("candidats", "2027-01-20", lid, candidats=3),
        ev("examen_caleol", "2027-02-01", lid),
        ev("bail_signe", "2027-02-15", lid, quartile="q1", prioritaire="oui"),
    ]


@pytest.fixture
def journal(tmp_path):
    chemin = tmp_path / "journal.csv"
    append_events(chemin, parcours_complet("L1"))
    append_events(chemin, [liberation("L2", "2027-03-01"),
                                ev("retrait", "2027-03-02", "L2", categorie="anru")])
    return chemin


def refuse_sans_rien_ecrire(chemin, evenement, champ, extrait):
    avant = chemin.read_bytes()
    with pytest.raises(EvenementRefuse) as erreur:
        append_event(chemin, evenement)
    assert chemin.read_bytes() == avant
    assert erreur.value.champ == champ
    assert extrait in str(erreur.value)
    return erreur.value


def test_new_journal_has_fixed_header_and_completed_rows(journal):
    lignes = journal.read_text(encoding="utf-8").splitlines()
    assert lignes[0] == ",".join(COLONNES)
    assert len(lignes) == 1 + 5 + 2
    bail = lignes[5].split(",")
    assert bail[COLONNES.index("reservataire")] == "prefet"  # completed from the proposal
    assert bail[COLONNES.index("typologie")] == "T3"  # completed from the release


def test_lease_on_never_released_dwelling_is_refused(journal):
    erreur = refuse_sans_rien_ecrire(journal, ev("bail_signe", "2027-05-01", "INCONNU"), "logement_id",
                                     "jamais été libéré")
    assert str(erreur).startswith("événement refusé")


def test_second_lease_on_same_release_is_refused(journal):
    refuse_sans_rien_ecrire(journal, ev("bail_signe", "2027-03-01", "L1"), "logement_id", "déjà un bail signé")


def test_proposal_after_retrait_is_refused(journal):
    refuse_sans_rien_ecrire(journal, ev("proposition", "2027-03-05", "L2", reservataire="prefet"),
                            "logement_id", "retiré du flux")


def test_retrait_needs_a_known_exclusion_category(journal):
    append_event(journal, liberation("L3", "2027-04-01"))
    refuse_sans_rien_ecrire(journal, ev("retrait", "2027-04-02", "L3"), "categorie", "obligatoire")
    refuse_sans_rien_ecrire(journal, ev("retrait", "2027-04-02", "L3", categorie="demolition"), "categorie",
                            "non reconnue")


def test_dates_cannot_go_backwards_for_a_dwelling(journal):
    append_event(journal, liberation("L3", "2027-04-01"))
    refuse_sans_rien_ecrire(journal, ev("proposition", "2027-03-31", "L3", reservataire="prefet"),
                            "horodatage", "antérieur")


def test_second_proposal_needs_a_refusal_first(journal):
    append_events(journal, [liberation("L3", "2027-04-01"),
                                 ev("proposition", "2027-04-02", "L3", reservataire="prefet")])
    refuse_sans_rien_ecrire(journal, ev("proposition", "2027-04-03", "L3", reservataire="bailleur"),
                            "reservataire", "déjà proposé à prefet")
    append_events(journal, [ev("refus", "2027-04-05", "L3"),
                                 ev("proposition", "2027-04-06", "L3", reservataire="bailleur")])
    assert cycle_states(read_journal(journal)).set_index("logement_id").loc["L3", "reservataire"] == "bailleur"


def test_caleol_needs_candidates_and_segment_cannot_be_contradicted(journal):
    append_events(journal, [liberation("L3", "2027-04-01"),
                                 ev("proposition", "2027-04-02", "L3", reservataire="prefet")])
    refuse_sans_rien_ecrire(journal, ev("examen_caleol", "2027-04-03", "L3"), "evenement", "aucun candidat")
    refuse_sans_rien_ecrire(journal, ev("candidats", "2027-04-03", "L3", candidats=2, commune="59009"),
                            "commune", "contredit la libération")
    refuse_sans_rien_ecrire(journal, ev("candidats", "2027-04-03", "L3", candidats=2, reservataire="bailleur"),
                            "reservataire", "contredit la proposition")


def test_malformed_fields_are_named_in_french(journal):
    refuse_sans_rien_ecrire(journal, liberation("L9", commune="5935"), "commune", "format invalide")
    refuse_sans_rien_ecrire(journal, liberation("L9", jour="2027-02-30"), "horodatage", "date invalide")
    refuse_sans_rien_ecrire(journal, ev("demenagement", "2027-05-01", "L9"), "evenement", "type d'événement inconnu")
    refuse_sans_rien_ecrire(journal, liberation("L9", categorie="anru"), "categorie", "non autorisé")
    append_events(journal, [liberation("L9"), ev("proposition", "2027-01-11", "L9", reservataire="prefet")])
    refuse_sans_rien_ecrire(journal, ev("candidats", "2027-01-12", "L9", candidats="trois"), "candidats",
                            "entier")


def test_batch_is_all_or_nothing_even_for_a_new_file(tmp_path, journal):
    nouveau = tmp_path / "nouveau.csv"
    lot = [liberation("A"), ev("bail_signe", "2027-01-11", "A")]
    with pytest.raises(EvenementRefuse, match="aucun événement du lot"):
        append_events(nouveau, lot)
    assert not nouveau.exists()
    avant = journal.read_bytes()
    with pytest.raises(EvenementRefuse):
        append_events(journal, lot)
    assert journal.read_bytes() == avant


def test_dwelling_can_be_released_again_after_a_lease(journal):
    append_events(journal, [liberation("L1", "2027-09-01"),
                                 ev("proposition", "2027-09-02", "L1", reservataire="bailleur")])
    etat = cycle_states(read_journal(journal))
    l1 = etat[etat["logement_id"] == "L1"].set_index("cycle")
    assert l1.loc[1, "statut"] == "attribue" and l1.loc[1, "reservataire"] == "prefet"
    assert l1.loc[2, "statut"] == "propose" and l1.loc[2, "reservataire"] == "bailleur"


def test_codes_are_read_as_strings(tmp_path):
    chemin = tmp_path / "j.csv"
    append_events(chemin, [liberation("0012", commune="01053", epci="200071751"),
                                liberation("0013", commune="2A004")])
    df = read_journal(chemin)
    assert list(df["commune"]) == ["01053", "2A004"]
    assert list(df["logement_id"]) == ["0012", "0013"]
    assert df.loc[0, "epci"] == "200071751"
    assert df["qpv"].dtype == bool and not df["qpv"].any()


def test_truncated_journal_is_not_appended_to(journal):
    journal.write_bytes(journal.read_bytes() + b"2027-05-01,liberation,L7,593")
    avant = journal.read_bytes()
    with pytest.raises(JournalInvalide, match="incomplète"):
        append_event(journal, liberation("L8", "2027-05-02"))
    assert journal.read_bytes() == avant


def test_manual_edit_creating_a_contradiction_is_detected_with_its_line(journal):
    texte = journal.read_text(encoding="utf-8").replace("2027-03-02,retrait,L2", "2027-02-02,retrait,L2")
    journal.write_text(texte, encoding="utf-8")
    with pytest.raises(JournalInvalide, match="ligne 8"):
        check_journal(journal)


QUOI = st.sampled_from(["liberation", "proposition", "candidats", "examen_caleol", "refus", "bail_signe",
                        "retrait"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(QUOI, st.sampled_from(["A", "B"]), st.integers(-2, 5)), min_size=1, max_size=25))
def test_any_sequence_leaves_a_consistent_journal(tmp_path_factory, sequence):
    """Whatever is attempted, accepted events form a valid journal and refused ones change nothing."""
    chemin = tmp_path_factory.mktemp("h") / "j.csv"
    jour, acceptes = datetime(2027, 1, 1), 0
    for quoi, lid, pas in sequence:
        jour += timedelta(days=pas)
        champs = {"liberation": liberation(lid, jour.date().isoformat()),
                  "proposition": ev(quoi, jour, lid, reservataire="prefet"),
                  "candidats": ev(quoi, jour, lid, candidats=1),
                  "retrait": ev(quoi, jour, lid, categorie="mutation")}.get(quoi, ev(quoi, jour, lid))
        avant = chemin.read_bytes() if chemin.exists() else None
        try:
            append_event(chemin, champs)
            acceptes += 1
        except EvenementRefuse:
            assert (chemin.read_bytes() if chemin.exists() else None) == avant
    if acceptes:
        check_journal(chemin)
        assert len(read_journal(chemin)) == acceptes
