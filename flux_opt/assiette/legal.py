"""Convention inputs that break a legal cap, found before any plan (`flux-opt verifier`).

The law sets maxima that a convention may lower, never raise: préfet (agents compris) 30 % of
the flux annuel, agents 5 % inside it (CCH R.441-5-2), collectivités without financing 20 % of
their territory's flux, together (CCH R.441-5). A target above its territory's flux cannot be
met either. Each warning names the file, the line, the field, the rule and the figures.
"""

from __future__ import annotations

from flux_opt.assiette.apportion import cap
from flux_opt.assiette.flux import Flux
from flux_opt.assiette.targets import LEGAL_MAXIMA, Targets, legal_rate
from flux_opt.errors import InputProblem
from flux_opt.input.schema import Instance
from flux_opt.vocabulary import PREFET_GROUP

SOURCE = {"prefet_taux": "CCH R.441-5-2", "prefet_agents_taux": "CCH R.441-5-2",
          "collectivite_plafond": "CCH R.441-5"}


def _n(value: float) -> str:
    return f"{value:.1f}".replace(".", ",")


def _pct(rate: float) -> str:
    return f"{100 * rate:.1f} %".replace(".", ",")


def outside_the_law(instance: Instance) -> bool:
    """The negotiator explores rates above the law (`regles.hors_cadre_legal`, option
    --hors-cadre-legal): the plan is then not a legal plan, and every output says so."""
    return bool(getattr(instance.regles, "hors_cadre_legal", False))


NOT_LEGAL = ("CE PLAN N'EST PAS UN PLAN LÉGAL : des taux au-delà des maxima légaux (CCH R.441-5-2, R.441-5) "
             "sont explorés (hors_cadre_legal)")


def _consequence(instance: Instance) -> str:
    if outside_the_law(instance):
        return " — exploré hors du cadre légal : ce plan n'est pas un plan légal"
    return " — le plan s'en tient au maximum légal"


def convention_warnings(instance: Instance, flux: Flux, targets: Targets) -> list[InputProblem]:
    """Every convention input above a legal cap, as French warnings, each saying what the plan
    does with it: held to the law, or explored outside it (`hors_cadre_legal`). `verifier`, `plan`,
    `comparer` and `negocier` show the same list."""
    found = (_rule_warnings(instance) + _state_warnings(instance, flux, targets)
             + _collectivite_warnings(instance, targets))
    consequence = _consequence(instance)
    found = [InputProblem(p.fichier, p.ligne, p.champ, p.message + consequence) for p in found]
    return found + _territory_warnings(instance, targets)


def legal_sentence(instance: Instance, flux: Flux, targets: Targets) -> str | None:
    """The one sentence the plan says about rates above the law (None when every rate is legal)."""
    if outside_the_law(instance):
        return NOT_LEGAL + "."
    held = _rule_warnings(instance) + _state_warnings(instance, flux, targets) + _collectivite_warnings(instance, targets)
    if not held:
        return None
    return ("Taux au-delà du maximum légal ramenés à la loi (les plafonds légaux prévalent, CCH R.441-5-2, "
            "R.441-5) : " + " ; ".join(p.message for p in held) + ".")


def _rule_warnings(instance: Instance) -> list[InputProblem]:
    found = []
    for key, legal in LEGAL_MAXIMA.items():
        rate = getattr(instance.regles, key)
        if rate > legal + 1e-9:
            found.append(InputProblem(instance.sources.get("parametres", "instance.toml"), None, f"regles.{key}",
                                  f"{_pct(rate)} dépasse le maximum légal de {_pct(legal)} ({SOURCE[key]})"))
    return found


def _line(instance: Instance, rid: str) -> int:
    return next(i for i, r in enumerate(instance.reservataires) if r.id == rid) + 2


def _state_warnings(instance: Instance, flux: Flux, targets: Targets) -> list[InputProblem]:
    table, found = targets.table, []
    total = flux.total
    state = table.loc[table["type"].isin(PREFET_GROUP)]
    # the raw targets are compared with rate × C: rounding them inside the caps is the tool's job
    legal_state = cap(LEGAL_MAXIMA["prefet_taux"], total)
    if len(state) and state["demande"].sum() > LEGAL_MAXIMA["prefet_taux"] * total + 1e-9:
        rid = state["id"].iloc[0]
        found.append(InputProblem(instance.source_of("reservataires"), _line(instance, rid), "taux",
                              f"préfet et agents : {_n(state['demande'].sum())} logements demandés pour un plafond de "
                              f"{legal_state} (30 % de {total}, arrondi à l'entier inférieur ; CCH R.441-5-2)"))
    legal_agents = cap(LEGAL_MAXIMA["prefet_agents_taux"], total)
    for row in table.loc[table["type"] == "prefet_agents"].itertuples():
        if row.demande > LEGAL_MAXIMA["prefet_agents_taux"] * total + 1e-9:
            found.append(InputProblem(instance.source_of("reservataires"), _line(instance, row.id), "taux",
                                  f"agents de l'État : {_n(row.demande)} logements demandés pour un plafond de "
                                  f"{legal_agents} (5 % de {total} ; CCH R.441-5-2)"))
    return found


def _collectivite_warnings(instance: Instance, targets: Targets) -> list[InputProblem]:
    """Each territory's collectivités without financing, together, within 20 % of its flux: the
    targets of those whose whole territory lies inside it must fit under its cap."""
    found = []
    table = targets.table.set_index("id")
    rate = legal_rate(instance.regles, "collectivite_plafond")
    for t in targets.collectivites.itertuples():
        inside = [rid for rids, terr in zip(targets.collectivites["reservataires"], targets.collectivites["territoire"])
                  if terr <= t.territoire for rid in rids]
        asked = float(table.loc[inside, "demande"].sum())
        limit = cap(rate, t.base)
        if asked > rate * t.base + 1e-9:
            who = ", ".join(inside)
            found.append(InputProblem(instance.source_of("reservataires"), _line(instance, t.reservataires[0]), "taux",
                                  f"collectivités sans financement apporté ({who}) : {_n(asked)} logements demandés "
                                  f"sur le territoire de {', '.join(t.reservataires)} pour un plafond de {limit} "
                                  f"({_pct(rate)} de {t.base}, ensemble ; CCH R.441-5)"))
    return found


def _territory_warnings(instance: Instance, targets: Targets) -> list[InputProblem]:
    found = []
    for row in targets.table.itertuples():
        if row.type != "bailleur" and row.demande > row.base + 1e-9:
            found.append(InputProblem(instance.source_of("reservataires"), _line(instance, row.id), "logements",
                                  f"objectif de {_n(row.demande)} logements pour un flux de {row.base} sur son territoire"))
    return found
