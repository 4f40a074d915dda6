"""Alerts of the follow-up, in words a manager acts on: who to chase, which dwelling
to hand back to the bailleur, which households the next dwellings should go to."""

from __future__ import annotations

import math

import pandas as pd

from flux_opt.explanation.sentences import fr_number
from flux_opt.plan.names import Names
from flux_opt.year.suivi import Suivi

# A réservataire is behind (or ahead) when its projection misses its target by more
# than this share of the target, and by at least one dwelling.
TOLERANCE_PROJECTION = 0.05


def _pct(valeur: float) -> str:
    return f"{round(100 * valeur)} %"


def _jour(moment) -> str:
    return pd.Timestamp(moment).strftime("%d/%m/%Y")


def _dans(jours: int) -> str:
    """« aujourd'hui », « demain », « dans 5 jours »."""
    return {0: "aujourd'hui", 1: "demain"}.get(int(jours), f"dans {int(jours)} jours")


def alerts(s: Suivi, lieux: Names | None = None) -> list[str]:
    """Every alert of the follow-up, most urgent first: delays, then pace, then mixity.
    `lieux`: the instance's names of communes and EPCI, read in place of their codes."""
    return [*delay_alerts(s, lieux), *pace_alerts(s), *mixity_alerts(s, lieux), *priority_alerts(s)]


def delay_alerts(s: Suivi, lieux: Names | None = None) -> list[str]:
    lieux = lieux or Names()
    phrases = []
    for d in s.delais.itertuples():
        nom = s.noms.get(d.reservataire, d.reservataire)
        logement = (f"Logement {d.logement_id} ({d.typologie} {'en QPV' if d.qpv else 'hors QPV'}, "
                    f"{lieux.commune_name(d.commune) or 'commune ' + str(d.commune)}) proposé à {nom} le {_jour(d.date_proposition)}")
        candidats = f"{d.candidats_presentes} candidat{'s' if d.candidats_presentes > 1 else ''} sur {d.candidats_attendus}"
        if d.situation == "depasse":
            phrases.append(f"{logement} : délai échu le {_jour(d.echeance)} avec {candidats} attendus — relancer "
                           f"{nom} ou rendre le logement au bailleur (flux-opt journal ajouter … retour_bailleur "
                           f"--logement-id {d.logement_id}).")
        else:
            phrases.append(f"{logement} : le délai finit le {_jour(d.echeance)} ({_dans(d.jours_restants)}), "
                           f"{candidats} attendus — relancer {nom}.")
    return phrases


def pace_alerts(s: Suivi) -> list[str]:
    """A réservataire is behind (ahead) when its projection to 31 December reaches a smaller (larger)
    share of its objective than the projection of all réservataires: the figures of the follow-up's
    table (taux = réalisé ÷ objectif, projection), so that the alert and the table agree."""
    table = s.reservataires[s.reservataires["cible"] > 0]
    if not len(table):
        return []
    projection, target = float(table["projection"].sum()), float(table["cible"].sum())
    rythme = projection / target
    phrases = []
    for r in table.itertuples():
        attendu = rythme * r.cible
        marge = max(1.0, TOLERANCE_PROJECTION * r.cible)
        if abs(r.projection - attendu) <= marge:
            continue
        nom = s.noms.get(r.reservataire, r.reservataire)
        etat = (f"{nom} : {fr_number(r.realise)} logements décomptés et {fr_number(r.en_cours)} en cours pour un "
                f"objectif de {fr_number(r.cible)} (taux {_pct(r.realise / r.cible)}) ; projection au 31 décembre : "
                f"{fr_number(r.projection)}, soit {_pct(r.projection / r.cible)} de son objectif quand l'ensemble en "
                f"est à {_pct(rythme)}")
        if r.projection < attendu:
            phrases.append(f"{etat} — lui orienter en priorité les prochains logements libérés (flux-opt orienter).")
        else:
            phrases.append(f"{etat} — orienter les prochains logements vers les autres réservataires.")
    if projection < target * (1 - TOLERANCE_PROJECTION):
        phrases.append(f"Ensemble : au rythme actuel, {fr_number(projection)} logements décomptés au 31 décembre pour "
                       f"{fr_number(target)} prévus ({_pct(rythme)}) — hâter les propositions, les passages en CALEOL "
                       "et les signatures, ou revoir la prévision des libérations.")
    return phrases


# (realised share, required share, where, households the next dwellings should go to)
_MIXITE_CIA = (("part_q1", "part_q1_exigee", "hors QPV", "du 1er quartile"),
               ("part_q234", "part_q234_exigee", "en QPV", "des quartiles 2 à 4"))


def mixity_alerts(s: Suivi, lieux: Names | None = None) -> list[str]:
    lieux = lieux or Names()
    phrases = []
    for m in s.mixite.to_dict("records"):
        for part, exigee, zone, menages in _MIXITE_CIA:
            if not math.isnan(m[exigee]) and not math.isnan(m[part]) and m[part] < m[exigee]:
                phrases.append(f"{lieux.epci_name(m['epci']) or 'EPCI ' + str(m['epci'])} (CIA) : {_pct(m[part])} des baux {zone} signés avec des ménages "
                               f"{menages}, pour {_pct(m[exigee])} exigés (CCH L.441-1) — proposer les prochains "
                               f"logements {zone} à des ménages {menages}.")
    return phrases


def priority_alerts(s: Suivi) -> list[str]:
    phrases = []
    for p in s.prioritaires.itertuples():
        if not math.isnan(p.part_due) and p.part_prioritaires < p.part_due:
            nom = s.noms.get(p.reservataire, p.reservataire)
            phrases.append(f"{nom} : {_pct(p.part_prioritaires)} de ses baux à des publics prioritaires pour "
                           f"{_pct(p.part_due)} dus (CCH L.441-1) — lui demander des candidats prioritaires "
                           "(DALO, article L.441-1).")
    return phrases
