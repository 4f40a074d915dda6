"""A seeded synthetic RPLS extract, for tests and benchmarks (no real data is shipped).

One line per dwelling of one bailleur in one département, in the open-data form (lower-case
`depcom_code`, `finan_code`, `bail` as AAAA-MM-JJ…) or the declaration form (upper-case `DEPCOM`,
`FINAN`, `BAIL` as MM/AAAA…). The lease dates follow a known rotation rate per commune × typologie ×
QPV cell (`true_rates`), so a test can check that the importer recovers it:
- the rates: département 9 %, typologie effect (T1 +3 pts … T6+ −3 pts), +1 pt in QPV, then each
  EPCI and each cell drawn Beta around its parent (prior strength 150 and 60 pseudo-dwellings);
- a dwelling first let before year N−1 had a move-in during N−1 with its cell's rate (lease date uniform
  in N−1); otherwise it is let on an older lease (4 % of them vacant, mode 2, no lease date);
- 3 % of dwellings were first let during N−1 (not in the mobility base), 0.5 % are empty (mode 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from flux_opt.rpls.columns import FINAN

TYPO_EFFECT = np.array([0.03, 0.015, 0.0, -0.01, -0.02, -0.03])  # 1 … 6+ rooms
ROOMS_SHARE = np.array([0.06, 0.20, 0.38, 0.26, 0.08, 0.02])
FINAN_SHARE = {"13": 0.45, "12": 0.08, "10": 0.10, "11": 0.02, "14": 0.08, "52": 0.17, "16": 0.03, "54": 0.03,
               "50": 0.02, "49": 0.02}
OPEN_DATA = {"commune": "depcom_code", "commune_nom": "depcom_libelle", "epci": "epci_code",
             "epci_nom": "epci_libelle", "qpv": "qpv_code", "nbpiece": "nbpiece", "finan": "finan_code",
             "finan_libelle": "finan_libelle", "construct": "construct", "bail": "bail", "mode": "mode",
             "locat": "locat", "surfhab": "surfhab"}
DECLARATION = {"commune": "DEPCOM", "epci": "EPCI", "qpv": "QPV", "nbpiece": "NBPIECE", "finan": "FINAN",
               "construct": "CONSTRUCT", "bail": "BAIL", "mode": "MODE", "locat": "LOCAT", "surfhab": "SURFHAB"}


@dataclass
class Synthetic:
    table: pd.DataFrame  # one row per dwelling, columns named as in the chosen form
    true_rates: pd.DataFrame  # commune, typologie, qpv, taux (the rotation the leases were drawn from)
    annee: int  # the plan's year: leases are those of 1 January N (move-ins of N−1)


def generate_rpls(logements: int, departement: str = "59", annee: int = 2027, graine: int = 0,
                  communes: int | None = None, forme: str = "opendata") -> Synthetic:
    """`logements` dwellings of one bailleur (see the module docstring)."""
    if forme not in ("opendata", "declaration"):
        raise ValueError(f"forme inconnue « {forme} » : opendata ou declaration")
    rng = np.random.default_rng(graine)
    n_communes = min(communes or max(3, int(0.3 * logements ** 0.64)), 99 if len(departement) == 3 else 999)
    n_epci = max(1, round(n_communes / 12))
    weights = np.arange(1, n_communes + 1) ** -1.0 * rng.lognormal(0, 0.5, n_communes)
    codes = np.array([f"{departement.zfill(2)}{i:03d}"[:5] for i in range(1, n_communes + 1)])
    if len(departement) == 3:
        codes = np.array([f"{departement}{i:02d}" for i in range(1, n_communes + 1)])
    epci_of = np.sort(rng.integers(0, n_epci, n_communes))
    epci_codes = np.array([f"2{departement.zfill(2)[:2].replace('A', '0').replace('B', '0')}{i:06d}"
                           for i in range(1, n_epci + 1)])
    qpv_share = np.where(rng.random(n_communes) < 0.4, rng.beta(2.5, 3, n_communes), 0.0)

    commune = rng.choice(n_communes, size=logements, p=weights / weights.sum())
    rooms = rng.choice(6, size=logements, p=ROOMS_SHARE) + 1
    rooms[rooms == 6] += rng.integers(0, 2, (rooms == 6).sum())  # some 7-room dwellings
    qpv = rng.random(logements) < qpv_share[commune]

    # Known rates: département + typologie + QPV, then EPCI and cell drawn Beta around their parent.
    typo = np.minimum(rooms, 6) - 1
    base = 0.09 + TYPO_EFFECT[:, None] + np.array([0.0, 0.01])[None, :]  # typologie × qpv
    epci_rate = _beta_around(rng, np.broadcast_to(base, (n_epci, 6, 2)), 150.0)
    cell_rate = _beta_around(rng, epci_rate[epci_of], 60.0)  # commune × typologie × qpv
    rate = cell_rate[commune, typo, qpv.astype(int)]

    locat = annee - 1 - np.minimum(rng.geometric(0.04, logements), 70)
    new = rng.random(logements) < 0.03
    locat[new] = annee - 1
    mode = np.where(rng.random(logements) < 0.005, "3", "1")
    moved_in = ~new & (mode == "1") & (rng.random(logements) < rate)
    vacant = ~moved_in & (mode == "1") & (rng.random(logements) < 0.04)
    mode[vacant] = "2"
    start = pd.Timestamp(annee - 1, 1, 1)
    days = rng.integers(0, 365, logements)
    bail = start + pd.to_timedelta(days, unit="D")
    years_before = np.minimum(rng.geometric(0.11, logements), annee - 1 - locat + 1)
    older = pd.to_datetime(pd.DataFrame({"year": np.maximum(annee - 1 - years_before, locat), "month": 1 + days % 12,
                                         "day": 1}))
    bail = np.where(moved_in | new, bail, older)
    bail = pd.Series(pd.to_datetime(bail))
    has_lease = mode == "1"

    finan_codes = np.array(list(FINAN_SHARE))
    finan = finan_codes[rng.choice(len(finan_codes), size=logements, p=np.array(list(FINAN_SHARE.values())))]
    construct = np.maximum(locat - rng.integers(0, 3, logements), 1900)
    fields = {
        "commune": codes[commune], "commune_nom": np.char.add("Commune ", codes[commune]),
        "epci": epci_codes[epci_of[commune]], "epci_nom": np.char.add("EPCI ", epci_codes[epci_of[commune]]),
        "qpv": np.where(qpv, np.char.add("QP0", codes[commune]), ""),
        "nbpiece": rooms.astype(str), "finan": finan,
        "finan_libelle": np.array([FINAN[c][1] for c in finan]), "construct": construct.astype(str),
        "bail": np.where(has_lease, bail.dt.strftime("%Y-%m-%d" if forme == "opendata" else "%m/%Y"), ""),
        "mode": mode, "locat": locat.astype(str), "surfhab": (18 + 14 * rooms + rng.integers(-5, 6, logements)).astype(str),
    }
    names = OPEN_DATA if forme == "opendata" else DECLARATION
    table = pd.DataFrame({names[f]: fields[f] for f in names})
    c, t, q = np.meshgrid(np.arange(n_communes), np.arange(6), np.arange(2), indexing="ij")
    true = pd.DataFrame({"commune": codes[c.ravel()], "typologie": [f"T{i + 1}" if i < 5 else "T6+" for i in t.ravel()],
                         "qpv": q.ravel().astype(bool), "taux": cell_rate.ravel()})
    return Synthetic(table, true, annee)


def _beta_around(rng: np.random.Generator, mean: np.ndarray, strength: float) -> np.ndarray:
    mean = np.clip(mean, 0.01, 0.99)
    return rng.beta(mean * strength, (1 - mean) * strength)


def write_rpls(synthetic: Synthetic, path: str | Path, separateur: str = ";") -> Path:
    """Write the extract as a CSV (the declaration's `;` by default) or, for a .xlsx path, a workbook."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        synthetic.table.to_excel(path, index=False, engine="xlsxwriter")
    else:
        synthetic.table.to_csv(path, sep=separateur, index=False)
    return path
