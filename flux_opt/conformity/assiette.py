"""The flux annuel recomputed for the check (CCH R.441-5: flux of the bailleur's lettings minus the
dwellings withdrawn), written again on purpose instead of reusing flux_opt.assiette."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from flux_opt.input.schema import Instance

Segment = tuple[str, str, bool, str]  # commune, typologie, qpv, financement (sorted = tie order)
NOISE = 1e-9


@dataclass(frozen=True)
class Reference:
    flux: dict[Segment, int]  # F_s, integers summing to C
    total: int  # C
    epci_of: dict[str, str]
    territoires: dict[str, frozenset[str]]  # réservataire → communes

    def flux_in(self, communes, qpv: bool | None = None) -> int:
        return sum(f for s, f in self.flux.items() if s[0] in communes and (qpv is None or s[2] == qpv))


def floor_cap(rate: float, base: float) -> int:
    """"Au plus rate × base" in whole dwellings."""
    return math.floor(rate * base + NOISE)


def ceil_min(rate: float, base: float) -> int:
    """"Au moins rate × base" in whole dwellings."""
    return math.ceil(rate * base - NOISE)


def _releases(instance: Instance) -> dict[Segment, float]:
    default = instance.parametres.rotation.defaut
    out: dict[Segment, float] = defaultdict(float)
    for p in instance.parc:
        if p.liberations is not None:
            a = p.liberations
        else:
            rate = default if p.taux_rotation is None else p.taux_rotation
            a = p.logements * rate + (p.premieres_mises_en_location or 0.0)
        out[(p.commune, p.typologie, p.qpv, p.financement)] += a
    return dict(out)


def _net(instance: Instance, a: dict[Segment, float]) -> dict[Segment, float]:
    """Each exclusion, at most the releases of its scope, spread pro rata; never below 0."""
    c = dict(a)
    for e in instance.exclusions:
        scope = [s for s in a if (e.commune in (None, s[0]) and e.typologie in (None, s[1])
                                  and e.qpv in (None, s[2]) and e.financement in (None, s[3]))]
        releases = sum(a[s] for s in scope)
        if releases > 0:
            for s in scope:
                c[s] -= min(e.logements, releases) * a[s] / releases
    return {s: max(v, 0.0) for s, v in c.items()}


def _integers(c: dict[Segment, float]) -> dict[Segment, int]:
    """Largest remainder of ⌊ΣC + ½⌋ over the segments, ties in segment order."""
    total = math.floor(sum(c.values()) + 0.5 + NOISE)
    out = {s: math.floor(v + NOISE) for s, v in c.items()}
    ranked = sorted(c, key=lambda s: (-round(c[s] - out[s], 12), s))
    for s in ranked[: max(total - sum(out.values()), 0)]:
        out[s] += 1
    return out


def reference(instance: Instance) -> Reference:
    flux = _integers(_net(instance, _releases(instance)))
    epci_of = {p.commune: p.epci for p in instance.parc}
    territoires = {}
    for r in instance.reservataires:
        codes = set(r.territoire)
        territoires[r.id] = frozenset(c for c, e in epci_of.items() if not codes or c in codes or e in codes)
    return Reference(flux, sum(flux.values()), epci_of, territoires)
