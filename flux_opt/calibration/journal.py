"""The demand model's inputs estimated from one or more years of journal (`flux-opt calibrer`).

Read with the journal's own reader (every line re-validated). Per candidate examined — a `bail_signe` or a
`refus` that names the household's quartile — the acceptance a(quartile, financement) the evaluation and
the composition model use; per réservataire, the candidates presented per dwelling proposed, the days from
the proposal to the candidates, the share of its dwellings that went back to the bailleur; the refusal
reasons (`commentaire` of the refusals). Each estimate has its count and a 95 % interval; small counts are
pulled towards the defaults (the instance's, else the project's): beta-binomial for rates
(calibration/shrinkage.py), gamma-Poisson for candidates, a normal mean for delays (models/rpls.md §4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import beta, gamma

from flux_opt.calibration.shrinkage import LEVEL, posterior, prior_strength
from flux_opt.errors import InputProblem, InvalidInput
from flux_opt.input.schema import Demande, Instance
from flux_opt.vocabulary import FINANCEMENTS, QUARTILES
from flux_opt.year.journal.events import JournalInvalide
from flux_opt.year.journal.storage import read_journal
from flux_opt.year.journal.views import with_cycles

PSEUDO = 5.0  # candidates and delays: the default weighs as much as 5 observed dwellings
ANSWERS = 10.0  # acceptance: the default rates (assumptions) weigh as much as 10 answers
DEFAULT_DELAI = 30
TABLE = ["indicateur", "portee", "effectif", "evenements", "brut", "defaut", "estime", "borne_basse", "borne_haute"]


@dataclass
class Calibration:
    estimates: pd.DataFrame  # TABLE: one row per estimate
    acceptation: pd.DataFrame  # quartile, financement, taux_acceptation
    reservataires: pd.DataFrame  # id, candidats, delai_jours
    journals: list[str]
    notes: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # réservataire id -> name (from --instance)

    def rows(self, indicateur: str) -> pd.DataFrame:
        return self.estimates[self.estimates["indicateur"] == indicateur]


def calibrate(journals: list[str | Path], instance: Instance | None = None) -> Calibration:
    """Estimates of every journal taken together (see the module docstring); InvalidInput if unreadable."""
    events = _read(journals)
    notes = []
    defaults = instance.acceptance() if instance is not None else Demande().taux()
    rows = {r.id: r for r in instance.reservataires} if instance is not None else {}
    bailleur = next((r.id for r in rows.values() if r.type == "bailleur"), None)
    acceptance = _acceptance(events, defaults, notes)
    proposals = _proposals(events)
    ids = sorted(set(proposals["reservataire"]) | set(rows))
    candidats = _candidates(proposals, ids, {i: (rows[i].candidats_attendus if i in rows else 1) for i in ids})
    delais = _delays(proposals, ids, {i: (rows[i].delai_jours if i in rows else DEFAULT_DELAI) for i in ids})
    returns = _returns(events, proposals, bailleur, notes)
    reasons = _reasons(events)
    estimates = pd.concat([acceptance, candidats, delais, returns, reasons], ignore_index=True)[TABLE]
    acceptation = acceptance.assign(quartile=acceptance["portee"].str.split(" ").str[0],
                                    financement=acceptance["portee"].str.split(" ").str[1],
                                    taux_acceptation=acceptance["estime"].round(4))
    per = pd.DataFrame({"id": ids,
                        "candidats": np.maximum(np.rint(candidats["estime"].to_numpy()), 1).astype(int),
                        "delai_jours": np.clip(np.ceil(delais["estime"].to_numpy()), 1, 366).astype(int)})
    if instance is None:
        notes.append("sans --instance : valeurs par défaut du projet (taux d'acceptation de [demande], un candidat, "
                     f"{DEFAULT_DELAI} jours)")
    return Calibration(estimates, acceptation[["quartile", "financement", "taux_acceptation"]], per,
                       [str(j) for j in journals], notes, {r.id: r.nom for r in rows.values()})


def _read(journals: list[str | Path]) -> pd.DataFrame:
    frames, problems = [], []
    for number, path in enumerate(journals):
        try:
            frame = read_journal(path)
        except JournalInvalide as exc:  # "<file>, ligne N : <reason>"
            found = re.match(r"^.*?, ligne (\d+) : (.*)$", str(exc), re.S)
            line, reason = (int(found[1]), found[2]) if found else (None, str(exc))
            problems.append(InputProblem(Path(path).name, line, None, reason))
            continue
        except FileNotFoundError:
            problems.append(InputProblem(str(path), None, None, "journal introuvable"))
            continue
        frames.append(with_cycles(frame).assign(journal=number))
    if problems:
        raise InvalidInput(problems)
    events = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if events.empty or not (events["evenement"] == "proposition").any():
        raise InvalidInput([InputProblem(", ".join(Path(j).name for j in journals), None, None,
                                         "aucune proposition dans le journal : rien à estimer")])
    events["dossier"] = (events["journal"].astype(str) + "/" + events["logement_id"] + "/"
                         + events["cycle"].astype(str))
    return events


def _rate_rows(indicateur: str, portee: list[str], k, n, default, m: float) -> pd.DataFrame:
    k, n, default = (np.asarray(a, dtype=float) for a in (k, n, default))
    post = posterior(k, n, default, m)
    return pd.DataFrame({"indicateur": indicateur, "portee": portee, "effectif": np.rint(n).astype(int),
                         "evenements": k.astype(int), "brut": np.where(n > 0, k / np.maximum(n, 1), np.nan),
                         "defaut": default, "estime": post["estimate"], "borne_basse": post["low"],
                         "borne_haute": post["high"]})


def _acceptance(events: pd.DataFrame, defaults: dict, notes: list[str]) -> pd.DataFrame:
    """Each bail_signe or refus with the household's quartile is one candidate's answer. Refusals that do
    not name it (journals written before the column, or by hand) are shared between the quartiles of their
    financement as the defaults expect them: k_q·(1 − a⁰_q)/a⁰_q for each quartile's k_q leases."""
    answers = events[events["evenement"].isin(["bail_signe", "refus"])]
    blank = answers["quartile"].fillna("") == ""
    leases = answers["evenement"] == "bail_signe"
    if (blank & leases).any():
        notes.append(f"{int((blank & leases).sum())} baux sans quartile du ménage : hors du calcul de l'acceptation")
    cells = [(q, f) for q in QUARTILES for f in FINANCEMENTS]
    known = answers[~blank]
    grouped = known.assign(ok=known["evenement"] == "bail_signe").groupby(["quartile", "financement"])["ok"]
    k = np.array([grouped.sum().get(c, 0) for c in cells], dtype=float)
    n = np.array([grouped.size().get(c, 0) for c in cells], dtype=float)
    default = np.array([defaults[c] for c in cells])
    unknown = answers[blank & ~leases].groupby("financement").size()
    if unknown.sum():
        expected = k * (1 - default) / np.maximum(default, 1e-6)
        for f, count in unknown.items():
            cols = [i for i, c in enumerate(cells) if c[1] == f]
            weights = expected[cols] if expected[cols].sum() > 0 else np.full(len(cols), 1.0)
            n[cols] += count * weights / weights.sum()
        notes.append(f"{int(unknown.sum())} refus sans quartile du ménage : répartis entre quartiles selon les taux "
                     "par défaut (le journal ne dit pas qui a refusé ; le taux de chaque financement reste mesuré)")
    return _rate_rows("acceptation", [f"{q} {f}" for q, f in cells], k, n, default, ANSWERS)


def _proposals(events: pd.DataFrame) -> pd.DataFrame:
    """One row per dwelling (a journal's release cycle) proposed to a réservataire: first proposal date,
    candidates presented (sum of its `candidats` events) and the date of the first of them, the date the
    proposal closed without candidates (a refusal, a lease, a return, a withdrawal), and the journal's
    last date (a proposal still open then is censored: its delay is at least that long)."""
    keys = ["dossier", "reservataire"]
    props = events[events["evenement"] == "proposition"].groupby(keys, as_index=False).agg(propose=("horodatage", "min"))
    cands = events[events["evenement"] == "candidats"].groupby(keys, as_index=False) \
        .agg(candidats=("candidats", "sum"), presentes=("horodatage", "min"))
    closing = events[events["evenement"].isin(["refus", "bail_signe", "retour_bailleur", "retrait"])]
    closed = closing.groupby(keys, as_index=False).agg(ferme=("horodatage", "min"))
    out = props.merge(cands, on=keys, how="left").merge(closed, on=keys, how="left")
    ends = events.groupby("journal")["horodatage"].max()
    out["fin"] = out["dossier"].str.split("/").str[0].astype(int).map(ends)
    out["candidats"] = out["candidats"].fillna(0).astype(float)
    out["observe"] = out["presentes"].notna() | out["ferme"].notna()  # concluded: its candidates are known
    return out


def _candidates(p: pd.DataFrame, ids: list[str], default: dict[str, float]) -> pd.DataFrame:
    """Gamma-Poisson: posterior Gamma(S + PSEUDO·c0, n + PSEUDO) of the mean candidates per dwelling, over
    the proposals concluded (candidates presented, or closed without any)."""
    concluded = p[p["observe"]]
    g = concluded.groupby("reservataire")["candidats"].agg(["sum", "size"]).reindex(ids, fill_value=0)
    c0 = np.array([default[i] for i in ids], dtype=float)
    shape, rate = g["sum"].to_numpy() + PSEUDO * c0, g["size"].to_numpy() + PSEUDO
    tail = (1 - LEVEL) / 2
    return pd.DataFrame({"indicateur": "candidats par logement", "portee": ids, "effectif": g["size"].to_numpy(),
                         "evenements": g["sum"].to_numpy().astype(int),
                         "brut": g["sum"].to_numpy() / g["size"].replace(0, np.nan).to_numpy(), "defaut": c0,
                         "estime": shape / rate, "borne_basse": gamma.ppf(tail, shape, scale=1 / rate),
                         "borne_haute": gamma.ppf(1 - tail, shape, scale=1 / rate)})


def _delays(p: pd.DataFrame, ids: list[str], default: dict[str, float]) -> pd.DataFrame:
    """Days from the proposal to the candidates, exponential with the proposals still waiting counted as
    censored (closed without candidates, or open at the journal's end): rate λ ~ Gamma(presented + PSEUDO,
    total days waited + PSEUDO·d0), mean delay 1/λ, interval from the Gamma quantiles."""
    presented = p["presentes"].notna()
    waited = np.where(presented, (p["presentes"] - p["propose"]).dt.days,
                      (p["ferme"].fillna(p["fin"]) - p["propose"]).dt.days).astype(float)
    g = pd.DataFrame({"r": p["reservataire"], "n": presented.astype(int), "t": waited}).groupby("r")[["n", "t"]].sum() \
        .reindex(ids, fill_value=0)
    d0 = np.array([default[i] for i in ids], dtype=float)
    shape, total = g["n"].to_numpy() + PSEUDO, g["t"].to_numpy() + PSEUDO * d0
    tail = (1 - LEVEL) / 2
    raw = g["t"].to_numpy() / g["n"].replace(0, np.nan).to_numpy()
    return pd.DataFrame({"indicateur": "délai des candidats (jours)", "portee": ids,
                         "effectif": g["n"].to_numpy().astype(int), "evenements": np.nan, "brut": raw,
                         "defaut": d0, "estime": total / (shape - 1),
                         "borne_basse": total / gamma.ppf(1 - tail, shape), "borne_haute": total / gamma.ppf(tail, shape)})


def _returns(events: pd.DataFrame, p: pd.DataFrame, bailleur: str | None, notes: list[str]) -> pd.DataFrame:
    """Dwellings first proposed to a réservataire that went on to the bailleur (a retour_bailleur, or a
    later proposal to the bailleur), shrunk towards the share of every réservataire."""
    if bailleur is None:
        owner = events.loc[events["evenement"] == "retour_bailleur", "dossier"]
        notes.append("sans --instance, le bailleur n'est connu que par les événements retour_bailleur")
        bailleur = ""
    else:
        owner = events.loc[(events["evenement"] == "proposition") & (events["reservataire"] == bailleur), "dossier"]
        owner = pd.concat([owner, events.loc[events["evenement"] == "retour_bailleur", "dossier"]])
    first = p.sort_values("propose").drop_duplicates("dossier")
    first = first[first["reservataire"] != bailleur]
    first = first.assign(rendu=first["dossier"].isin(set(owner)))
    g = first.groupby("reservataire")["rendu"].agg(["sum", "size"])
    if g.empty:
        return pd.DataFrame(columns=TABLE)
    overall = (g["sum"].sum() + 0.5) / (g["size"].sum() + 1)  # Jeffreys: never exactly 0 or 1
    parent = np.full(len(g), overall)
    m = min(prior_strength(g["sum"], g["size"], parent), float(g["size"].sum()))  # at most the data behind it
    return _rate_rows("part rendue au bailleur", list(g.index), g["sum"], g["size"], parent, m)


def _reasons(events: pd.DataFrame) -> pd.DataFrame:
    """Share of each refusal reason among the refusals, with a Jeffreys interval (bounds 0 and 1 when no
    refusal or every refusal gives it; no shrinkage: no default)."""
    refus = events[events["evenement"] == "refus"]
    if refus.empty:
        return pd.DataFrame(columns=TABLE)
    motif = refus["commentaire"].fillna("").str.strip().str.lower().replace("", "(sans motif)")
    counts = motif.value_counts()
    n = float(len(motif))
    k = counts.to_numpy(dtype=float)
    tail = (1 - LEVEL) / 2
    return pd.DataFrame({"indicateur": "motif de refus", "portee": counts.index, "effectif": int(n),
                         "evenements": k.astype(int), "brut": k / n, "defaut": np.nan, "estime": k / n,
                         "borne_basse": np.where(k > 0, beta.ppf(tail, k + 0.5, n - k + 0.5), 0.0),
                         "borne_haute": np.where(k < n, beta.ppf(1 - tail, k + 0.5, n - k + 0.5), 1.0)})
