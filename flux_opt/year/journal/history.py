"""Replay of the journal: one cycle per release of a dwelling, checked event by event."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from flux_opt.year.journal.events import COLONNES, SEGMENT, EvenementRefuse, JournalInvalide, validate_event


@dataclass
class Cycle:
    """One release of a dwelling, from `liberation` to `bail_signe` or `retrait`."""

    numero: int
    liberation: dict[str, str]
    date_liberation: datetime
    reservataire_actif: str | None = None
    avec_candidats: bool = False
    ferme_par: str | None = None
    date_fermeture: datetime | None = None
    reservataire_final: str | None = None
    categorie: str | None = None
    propositions: int = 0
    date_proposition: datetime | None = None
    candidats_presentes: int = 0
    retours: list[str] = field(default_factory=list)  # réservataires that let the delay run out


@dataclass
class Historique:
    """Replayed state of the journal: latest cycle and last date per dwelling.

    `reservataires` (known ids) refuses a proposal to an unknown réservataire;
    `delais` (id -> days to propose) refuses a return to the bailleur before the delay.
    """

    cycles: dict[str, Cycle] = field(default_factory=dict)
    derniere_date: dict[str, datetime] = field(default_factory=dict)
    tous: list[Cycle] = field(default_factory=list)
    reservataires: frozenset[str] | None = None
    delais: Mapping[str, int] = field(default_factory=dict)
    lignes: list[dict[str, str]] = field(default_factory=list)  # completed rows, as replayed

    def appliquer(self, ev: BaseModel) -> dict[str, str]:
        """Check `ev` against the history, update it, return the completed CSV row."""
        ev = self._identifier(ev)
        lid = ev.logement_id
        derniere = self.derniere_date.get(lid)
        if derniere is not None and ev.horodatage < derniere:
            raise EvenementRefuse(
                "horodatage",
                f"le {date_txt(ev.horodatage)} est antérieur au dernier événement du logement "
                f"{lid} ({date_txt(derniere)})",
            )
        cycle = self.cycles.get(lid)
        if ev.evenement == "liberation":
            if cycle is not None and cycle.ferme_par is None:
                raise EvenementRefuse(
                    "logement_id",
                    f"le logement {lid} est déjà libéré depuis le {date_txt(cycle.date_liberation)} "
                    "et n'a ni bail signé ni retrait",
                )
            ligne = _ligne(ev)
            nouveau = Cycle(numero=(cycle.numero + 1 if cycle else 1), liberation=ligne,
                            date_liberation=ev.horodatage)
            self.cycles[lid] = nouveau
            self.tous.append(nouveau)
            self.derniere_date[lid] = ev.horodatage
            return ligne
        cycle = self._cycle_ouvert(lid, cycle, ev.evenement)
        ligne = _ligne(ev)
        _completer_segment(ligne, cycle.liberation)
        self._transition(cycle, ev, ligne)
        self.derniere_date[lid] = ev.horodatage
        return ligne

    def _identifier(self, ev: BaseModel) -> BaseModel:
        """A release may come without `logement_id`: give it the next free `LOG-nnnnn`."""
        if ev.logement_id is not None:
            return ev
        if ev.evenement != "liberation":
            raise EvenementRefuse("logement_id", f"champ obligatoire manquant pour « {ev.evenement} » : "
                                                 "indiquer l'identifiant donné au logement à sa libération")
        return ev.model_copy(update={"logement_id": self.prochain_identifiant()})

    def prochain_identifiant(self) -> str:
        """The next free `LOG-nnnnn`, for a dwelling released without an identifier."""
        rang = len(self.tous) + 1
        while f"LOG-{rang:05d}" in self.cycles:
            rang += 1
        return f"LOG-{rang:05d}"

    def _check_reservataire_known(self, reservataire: str) -> None:
        if self.reservataires is not None and reservataire not in self.reservataires:
            raise EvenementRefuse("reservataire", f"réservataire inconnu « {reservataire} » (réservataires du "
                                                  f"plan : {', '.join(sorted(self.reservataires))})")

    @staticmethod
    def _cycle_ouvert(lid: str, cycle: Cycle | None, evenement: str) -> Cycle:
        if cycle is None:
            raise EvenementRefuse(
                "logement_id",
                f"le logement {lid} n'a jamais été libéré : enregistrer d'abord un événement "
                f"« liberation » avant « {evenement} »",
            )
        if cycle.ferme_par == "bail_signe":
            raise EvenementRefuse(
                "logement_id",
                f"le logement {lid} a déjà un bail signé le {date_txt(cycle.date_fermeture)} "
                f"(réservataire {cycle.reservataire_final}) : « {evenement} » exige une nouvelle libération",
            )
        if cycle.ferme_par == "retrait":
            raise EvenementRefuse(
                "logement_id",
                f"le logement {lid} a été retiré du flux le {date_txt(cycle.date_fermeture)} "
                f"(catégorie {cycle.categorie}) : il ne peut plus être proposé ni attribué",
            )
        return cycle

    def _retour(self, cycle: Cycle, ev: BaseModel) -> None:
        """The dwelling goes back to the bailleur: only once the convention's delay ran out."""
        reservataire = cycle.reservataire_actif
        if reservataire in self.delais:
            limite = echeance(cycle, self.delais[reservataire])
            if ev.horodatage.date() <= limite.date():
                raise EvenementRefuse(
                    "horodatage",
                    f"le délai de {reservataire} pour proposer des candidats sur le logement {ev.logement_id} "
                    f"court jusqu'au {date_txt(limite)} inclus ({self.delais[reservataire]} jours après la "
                    "proposition) : le logement ne peut pas encore être rendu au bailleur")
        cycle.retours.append(reservataire)
        cycle.reservataire_actif, cycle.avec_candidats = None, False

    def _transition(self, cycle: Cycle, ev: BaseModel, ligne: dict[str, str]) -> None:
        lid, quoi = ev.logement_id, ev.evenement
        if quoi == "retrait":
            cycle.ferme_par, cycle.date_fermeture, cycle.categorie = "retrait", ev.horodatage, ev.categorie
            cycle.reservataire_actif = None
            return
        if quoi == "proposition":
            if cycle.reservataire_actif is not None:
                raise EvenementRefuse(
                    "reservataire",
                    f"le logement {lid} est déjà proposé à {cycle.reservataire_actif} : "
                    "enregistrer un refus avant une nouvelle proposition",
                )
            self._check_reservataire_known(ev.reservataire)
            cycle.reservataire_actif, cycle.avec_candidats = ev.reservataire, False
            cycle.date_proposition, cycle.candidats_presentes = ev.horodatage, 0
            cycle.propositions += 1
            return
        if cycle.reservataire_actif is None:
            raise EvenementRefuse(
                "logement_id", f"le logement {lid} n'est proposé à aucun réservataire : « {quoi} » impossible"
            )
        if ev.reservataire is not None and ev.reservataire != cycle.reservataire_actif:
            raise EvenementRefuse(
                "reservataire",
                f"« {ev.reservataire} » contredit la proposition en cours du logement {lid} "
                f"à {cycle.reservataire_actif}",
            )
        ligne["reservataire"] = cycle.reservataire_actif
        if quoi == "candidats":
            cycle.avec_candidats = True
            cycle.candidats_presentes += ev.candidats
        elif quoi == "retour_bailleur":
            self._retour(cycle, ev)
        elif quoi == "examen_caleol" and not cycle.avec_candidats:
            raise EvenementRefuse(
                "evenement", f"aucun candidat n'a été présenté pour le logement {lid} : examen en CALEOL impossible"
            )
        elif quoi == "refus":
            cycle.reservataire_actif, cycle.avec_candidats = None, False
        elif quoi == "bail_signe":
            _household(ligne)
            cycle.ferme_par, cycle.date_fermeture = "bail_signe", ev.horodatage
            cycle.reservataire_final, cycle.reservataire_actif = cycle.reservataire_actif, None


def echeance(cycle: Cycle, delai_jours: int) -> datetime | None:
    """Last day for the réservataire of the proposal in progress to present its candidates."""
    if cycle.date_proposition is None:
        return None
    return cycle.date_proposition + timedelta(days=delai_jours)


def date_txt(moment: datetime | None) -> str:
    if moment is None:
        return "?"
    return moment.strftime("%d/%m/%Y") if moment.time() == datetime.min.time() else moment.strftime("%d/%m/%Y %H:%M")


def format_valeur(valeur: Any) -> str:
    if valeur is None:
        return ""
    if isinstance(valeur, bool):
        return "oui" if valeur else "non"
    if isinstance(valeur, datetime):
        if valeur.time() == datetime.min.time():
            return valeur.date().isoformat()
        return valeur.isoformat(timespec="seconds")
    return str(valeur)


def _ligne(ev: BaseModel) -> dict[str, str]:
    donnees = ev.model_dump()
    return {col: format_valeur(donnees.get(col)) for col in COLONNES}


def _completer_segment(ligne: dict[str, str], liberation: dict[str, str]) -> None:
    """Fill the segment from the release; a differing value is a contradiction."""
    for col in SEGMENT:
        if ligne[col] and liberation[col] and ligne[col] != liberation[col]:
            raise EvenementRefuse(
                col,
                f"« {ligne[col]} » contredit la libération du logement {ligne['logement_id']} "
                f"(« {liberation[col]} »)",
            )
        ligne[col] = liberation[col] or ligne[col]


def _household(ligne: dict[str, str]) -> None:
    """A household recognised DALO is a public prioritaire (CCH L.441-1): `dalo` oui
    completes `prioritaire`, `prioritaire` non completes `dalo` non; a contradiction is refused."""
    if ligne["dalo"] == "oui" and ligne["prioritaire"] == "non":
        raise EvenementRefuse("dalo", "un ménage reconnu DALO est un public prioritaire (CCH L.441-1) : "
                                      "« prioritaire » ne peut pas valoir « non »")
    if ligne["dalo"] == "oui":
        ligne["prioritaire"] = "oui"
    if ligne["prioritaire"] == "non":
        ligne["dalo"] = "non"


def rejouer(lignes: Iterable[tuple[int, Mapping[str, str]]], source: str = "journal",
            reservataires: frozenset[str] | None = None, delais: Mapping[str, int] | None = None) -> Historique:
    """Replay (line number, row) pairs; raise JournalInvalide naming the file and line."""
    historique = Historique(reservataires=reservataires, delais=dict(delais or {}))
    for numero, ligne in lignes:
        try:
            historique.lignes.append(historique.appliquer(validate_event(ligne)))
        except EvenementRefuse as erreur:
            raise JournalInvalide(f"{source}, ligne {numero} : {erreur}") from None
    return historique
