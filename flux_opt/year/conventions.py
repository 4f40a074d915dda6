"""What the year's follow-up needs from the instance behind a plan: each réservataire's
convention (delay to propose, candidates expected, counting of returned dwellings,
share owed to publics prioritaires) and the CIA mixity targets (models/journal.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flux_opt.input.schema import Instance, load_instance
from flux_opt.plan.folder import read_json
from flux_opt.model.families import prioritaires_rates


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
    from flux_opt.assiette.flux import compute_flux
    from flux_opt.assiette.targets import territory_communes

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
        donnees = read_json(resume)
        for cle in ("chemin_instance", "instance"):
            chemin = donnees.get(cle)
            if isinstance(chemin, str) and chemin and Path(chemin).exists():
                return Path(chemin)
    return None


def plan_context(plan_dir: str | Path, instance: str | Path | None = None) -> Contexte | None:
    """The year's rules from the plan's instance, or None when the instance is not at hand."""
    chemin = instance_du_plan(plan_dir, instance)
    return contexte(load_instance(chemin)) if chemin is not None else None
