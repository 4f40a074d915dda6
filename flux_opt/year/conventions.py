"""What the year's follow-up needs from the instance behind a plan: each réservataire's
convention (delay to propose, candidates expected, counting of returned dwellings,
share owed to publics prioritaires) and the CIA mixity targets (models/journal.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from flux_opt.assiette.flux import compute_flux
from flux_opt.assiette.targets import territory_communes
from flux_opt.input.schema import DELAI_JOURS_DEFAUT, Instance
from flux_opt.model.families import prioritaires_rates
from flux_opt.pipeline import load

DELAI_PAR_DEFAUT = DELAI_JOURS_DEFAUT  # days to propose when no convention says otherwise (none for the bailleur)


@dataclass(frozen=True)
class Convention:
    id: str
    nom: str
    type: str
    gestion: str
    delai_jours: int
    candidats: int
    decompte_retour: bool
    prioritaires_min: float  # share of its attributions owed to publics prioritaires


@dataclass(frozen=True)
class Contexte:
    """The instance's rules for the year, keyed by réservataire id."""

    annee: int
    conventions: dict[str, Convention]
    cia_epci: frozenset[str]
    q1_hors_qpv: float
    q234_qpv: float
    territoires: dict[str, frozenset[str]]  # commune codes each réservataire may receive

    @property
    def delais(self) -> dict[str, int]:
        return {r: c.delai_jours for r, c in self.conventions.items()}

    def nom(self, reservataire: str) -> str:
        convention = self.conventions.get(reservataire)
        return convention.nom if convention else reservataire


def contexte(instance: Instance) -> Contexte:
    epci_of = compute_flux(instance).segments.groupby("commune")["epci"].first()
    owed = prioritaires_rates(instance)  # the plan's own rule (CCH L.441-1, R.441-5): one reading
    conventions = {
        r.id: Convention(r.id, r.nom, r.type, r.gestion, r.delai_jours, r.candidats_attendus, r.decompte_retour,
                         owed.get(r.id, 0.0))
        for r in instance.reservataires
    }
    cia = instance.parametres.cia
    return Contexte(
        annee=instance.parametres.instance.annee, conventions=conventions, cia_epci=frozenset(cia.epci),
        q1_hors_qpv=cia.q1_hors_qpv, q234_qpv=cia.q234_qpv,
        territoires={r.id: territory_communes(r.territoire, epci_of) for r in instance.reservataires},
    )


def instance_du_plan(plan_dir: str | Path, instance: str | Path | None = None) -> Path | None:
    """The given instance, else the one recorded in the plan's resume.json (if it still exists)."""
    if instance is not None:
        return Path(instance)
    resume = Path(plan_dir) / "resume.json"
    if resume.exists():
        donnees = json.loads(resume.read_text(encoding="utf-8"))
        for cle in ("chemin_instance", "instance"):
            chemin = donnees.get(cle)
            if isinstance(chemin, str) and chemin and Path(chemin).exists():
                return Path(chemin)
    return None


def plan_instance(plan_dir: str | Path, instance: str | Path | None = None) -> tuple[Instance | None, Contexte | None]:
    """The plan's instance, read by the pipeline's load stage, and the year's rules behind it
    ((None, None) when the instance is not at hand). Its targets are not checked: the year's
    follow-up reads conventions, territories and exclusions (a re-solve checks the rest)."""
    chemin = instance_du_plan(plan_dir, instance)
    if chemin is None:
        return None, None
    data = load(chemin, targets=False)
    return data, contexte(data)


def delais_par_defaut(reservataires: list[str], contexte: Contexte | None) -> dict[str, int]:
    """Each réservataire's delay to propose: its convention's, else DELAI_PAR_DEFAUT days (none for
    the bailleur)."""
    delais = contexte.delais if contexte else {}
    bailleurs = {r for r, c in contexte.conventions.items() if c.type == "bailleur"} if contexte else {"bailleur"}
    return {r: delais.get(r, DELAI_PAR_DEFAUT) for r in reservataires if r not in bailleurs}
