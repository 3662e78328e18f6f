"""The quality table's extra columns: wet-case, temporal and block-edge scores."""

import numpy as np
import xarray as xr

from xstochsr.demo import EXTRA, HEADLINE, _format_table, score_table
from xstochsr.grid import coarsen_field


def _case(standard_name, units, frozen):
    rng = np.random.default_rng(3)
    t, n, m = 4, 32, 5
    truth = rng.gamma(0.4, 2.0, (t, n, n)).astype("f4")
    ens = rng.gamma(0.4, 2.0, (m, t, n, n)).astype("f4")
    if frozen:  # every member repeats its first frame: lag-1 correlation exactly 1
        ens[:] = ens[:, :1]
    attrs = {"standard_name": standard_name, "units": units}
    dims = ("time", "y", "x")
    obs = xr.DataArray(truth, dims=dims, coords={"time": np.arange(t), "y": np.arange(n) * 1e3,
                                                 "x": np.arange(n) * 1e3}, attrs=attrs)
    e = xr.DataArray(ens, dims=("realization", *dims), coords=obs.coords, attrs=attrs)
    return e, obs, coarsen_field(obs, 8)


def test_rain_rows_have_wet_temporal_and_block_scores():
    ens, obs, coarse = _case("lwe_precipitation_rate", "mm h-1", frozen=True)
    row = score_table(ens, obs, coarse, 8)
    assert set(HEADLINE) | set(EXTRA) == set(row)
    assert row["lag1"] == 1.0 and abs(row["lag1_truth"]) < 0.2  # frozen vs white noise
    assert row["outlier_proportion_calibrated"] == 2 / 6
    assert 0 <= row["outlier_proportion_wet"] <= 1 and 0 <= row["rank_ks_wet"] <= 1
    assert 0.7 < row["block_edge"] < 1.3 and 0.7 < row["block_edge_truth"] < 1.3


def test_wind_rows_have_no_wet_scores_and_tables_mark_them():
    ens, obs, coarse = _case("eastward_wind", "m s-1", frozen=False)
    row = score_table(ens, obs, coarse, 8)
    assert not {"rank_ks_wet", "outlier_proportion_wet"} & set(row)
    assert abs(row["lag1"]) < 0.2
    rain = score_table(*_case("lwe_precipitation_rate", "mm h-1", frozen=False), 8)
    extra = _format_table({"wind": row, "rain": rain}).split("\n\n")[1].splitlines()
    cols = extra[0].split()[1:]
    wind = dict(zip(cols, extra[2].split()[1:], strict=True))
    rain_cells = dict(zip(cols, extra[3].split()[1:], strict=True))
    assert wind["rank_ks_wet"] == "-" and wind["lag1"] != "-"
    assert float(rain_cells["rank_ks_wet"]) == round(rain["rank_ks_wet"], 4)


def test_extremes_columns_see_an_ensemble_too_intense_by_half():
    ens, obs, coarse = _case("lwe_precipitation_rate", "mm h-1", frozen=False)
    same = score_table(ens, obs, coarse, 8)
    for key in ("q90_ratio", "q99_ratio", "q999_ratio", "exceed1_ratio", "exceed5_ratio"):
        assert 0.8 < same[key] < 1.25, key  # members drawn like the truth
    hot = score_table(1.5 * ens, obs, coarse, 8)
    for key in ("q90_ratio", "q99_ratio", "q999_ratio"):
        assert abs(hot[key] / same[key] - 1.5) < 1e-4, key  # quantiles scale exactly
    assert hot["exceed5_ratio"] > 1.5 * same["exceed5_ratio"]  # heavy rain far more often


def test_exceedance_thresholds_follow_the_truths_units():
    ens, obs, coarse = _case("lwe_precipitation_rate", "mm h-1", frozen=False)
    row = score_table(ens, obs, coarse, 8)
    si = {"standard_name": "lwe_precipitation_rate", "units": "m s-1"}
    k = 1e-3 / 3600.0
    row_si = score_table((ens * k).assign_attrs(si), (obs * k).assign_attrs(si),
                         (coarse * k).assign_attrs(si), 8)
    for key in ("exceed1_ratio", "exceed5_ratio", "exceed10_ratio"):
        assert (key in row) == (key in row_si)
        if key in row:
            assert abs(row[key] - row_si[key]) < 1e-6, key
    wind = score_table(*_case("eastward_wind", "m s-1", frozen=False), 8)
    assert not any(k.startswith("exceed") for k in wind)
