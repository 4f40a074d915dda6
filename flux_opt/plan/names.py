"""The names a bailleur uses beside the codes: réservataires (reservataires.csv `nom`), communes
(parc.csv `commune_nom`) and EPCI (parc.csv `epci_nom`, optional). What people read shows the
name with its code; machine CSVs keep the codes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Names:
    reservataires: dict[str, str] = field(default_factory=dict)
    communes: dict[str, str] = field(default_factory=dict)
    epci: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, instance) -> Names:
        communes, epci = {}, {}
        for row in instance.parc:
            if row.commune_nom:
                communes.setdefault(row.commune, row.commune_nom)
            if getattr(row, "epci_nom", None):
                epci.setdefault(row.epci, row.epci_nom)
        return cls({r.id: r.nom for r in instance.reservataires}, communes, epci)

    def reservataire(self, rid) -> str:
        """The réservataire's name (its id when it has none)."""
        return self.reservataires.get(rid) or str(rid)

    def commune(self, code) -> str:
        """« Roubaix (59512) », or the code alone."""
        return _with_code(self.communes.get(code), code)

    def commune_name(self, code) -> str:
        return self.communes.get(code, "")

    def epci_label(self, code) -> str:
        """« Métropole européenne de Lille (200093201) », or the SIREN alone."""
        return _with_code(self.epci.get(code), code)

    def epci_name(self, code) -> str:
        return self.epci.get(code, "")

    def scope(self, portee: str) -> str:
        """A rule's scope (contraintes.csv `portee`, built from codes) with the names a person knows:
        « EPCI 200093201 hors QPV tous réservataires critère q1 » → « EPCI Métropole européenne de
        Lille (200093201) hors QPV tous réservataires, 1er quartile »."""
        text = _POOL.sub(lambda m: f"{m[1]} de {self.reservataire(m[2])}, "
                                   + (self.commune(m[4]) if m[3] == "commune" else self.epci_label(m[4])), portee)
        text = _TERRITORY.sub(lambda m: "territoire de " + ", ".join(self.reservataire(r) for r in m[1].split(", ")),
                              text)
        text = _CELL.sub(lambda m: f"{m[1]} {self.commune(m[2])}", text)
        text = _RESERVATAIRE.sub(lambda m: f"réservataire {self.reservataire(m[1])}", text)
        text = _EPCI.sub(lambda m: f"EPCI {self.epci_label(m[1])}", text)
        text = _COMMUNE.sub(lambda m: f"commune {self.commune(m[1])}", text)
        text = _CODE.sub(lambda m: self._bare_code(m[1]), text)
        return " ".join(_CRITERE.sub(lambda m: ", " + CRITERES.get(m[1], m[1]), text).split())

    def _bare_code(self, code: str) -> str:
        """A commune or EPCI code left alone in a scope (« … Action Logement Services 200093201 T2 »)."""
        if code in self.epci:
            return f"EPCI {self.epci_label(code)}"
        return self.commune(code) if code in self.communes else code


CRITERES = {"q1": "1er quartile", "q234": "quartiles 2 à 4", "prioritaire": "publics prioritaires",
            "travailleur_essentiel": "travailleurs essentiels"}
_POOL = re.compile(r"^(vivier|logements) (\S+) (commune|epci) (\S+)")
_TERRITORY = re.compile(r"^territoire de ([\w-]+(?:, [\w-]+)*)")
_CELL = re.compile(r"^(cellule|segment) (\w+)")
_RESERVATAIRE = re.compile(r"\bréservataire (\S+)")
_EPCI = re.compile(r"\bEPCI (\d{9})\b")
_COMMUNE = re.compile(r"\bcommune (\w+)(?: \([^)]*\))?")
_CRITERE = re.compile(r" critère (\S+)$")
_CODE = re.compile(r"(?<![(\w])(\d{9}|\d{5}|2[AB]\d{3})(?![\w)])")  # not already « Nom (code) »


def _with_code(name: str | None, code) -> str:
    return f"{name} ({code})" if name else str(code)
