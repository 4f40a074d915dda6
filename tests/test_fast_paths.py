"""The cheaper paths of the per-instance work give what the pandas calls they replace gave, exactly
(same values, same order, same dtypes): a plan's files must not change when they get faster."""

import numpy as np
import pandas as pd

from flux_opt.conformity.check import _Dwellings
from flux_opt.model.data import _with_segments
from flux_opt.plan.result import _grouped_sum


def test_grouped_sum_is_pandas_groupby_sum_even_with_repeated_keys_and_cancelling_values():
    rng = np.random.default_rng(1)
    n = 400
    table = pd.DataFrame({"commune": rng.choice(["75056", "13055", "69123"], n),
                          "qpv": rng.random(n) < 0.5,
                          "quartile": rng.choice(["q1", "q234"], n),
                          "valeur": rng.random(n) * 10.0 ** rng.integers(-3, 9, n)})
    table.loc[::7, "valeur"] *= -1  # large values that cancel: the order of the sum shows
    keys = ["commune", "qpv", "quartile"]
    expected = table.groupby(keys, sort=True)["valeur"].sum().reset_index()
    pd.testing.assert_frame_equal(_grouped_sum(table, keys, "valeur"), expected, check_exact=True)
    missing = table.assign(commune=table["commune"].where(table.index % 5 > 0))  # rows dropped as pandas drops them
    pd.testing.assert_frame_equal(_grouped_sum(missing, keys, "valeur"),
                                  missing.groupby(keys, sort=True)["valeur"].sum().reset_index(), check_exact=True)


def test_with_segments_is_the_merge_on_the_cell():
    segs = pd.DataFrame({"s": range(6), "cell": [2, 0, 2, 1, 2, 0], "financement": list("ABCDEF"),
                         "flux": [3, 1, 4, 1, 5, 9]})
    units = pd.DataFrame({"unit": [7, 8, 9, 10], "r": [0, 1, 0, 2], "cell": [2, 0, 3, 2]})  # cell 3 has no segment
    pd.testing.assert_frame_equal(_with_segments(units, segs), units.merge(segs, on="cell"), check_exact=True)


def test_dwellings_counts_as_the_masks_over_plan_csv():
    plan = pd.DataFrame({"reservataire": ["prefet", "prefet", "ville", "prefet", "ville"],
                         "commune": ["A", "B", "A", "A", None], "qpv": [True, False, False, False, True],
                         "logements": [3, 4, 5, 6, 7]})
    dw = _Dwellings(plan)
    assert dw.count(["prefet"]) == 13.0
    assert dw.count(["prefet", "prefet", "ville"]) == 25.0  # a réservataire named twice counts once
    assert dw.count(["prefet"], {"A"}) == 9.0
    assert dw.count(["ville"], {"A"}, outside=True) == 7.0  # a row without commune is outside every territory
    assert dw.count(["prefet"], qpv=False) == 10.0
    grouped = plan.groupby("commune")["logements"].sum()  # what the uniformity rule read per commune
    assert all(dw.per_commune(["prefet", "ville"])[c] == grouped[c] for c in ("A", "B"))
