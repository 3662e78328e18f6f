"""seam_score: gradient across tile borders over the gradient elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xstochsr.errors import InvalidInputError
from xstochsr.metrics import seam_score


def _noise(rng, shape=(3, 64, 64)):
    return xr.DataArray(rng.random(shape), dims=("time", "y", "x"), name="precip")


def test_no_seam_scores_one(rng):
    s = seam_score(_noise(rng), borders=([16, 40], [21]))
    assert s.name == "seam_score" and s.dims == () and s.attrs["units"] == "1"
    assert abs(float(s) - 1) < 0.1


def test_step_along_a_border_scores_above_one(rng):
    da = _noise(rng)
    jumped = da.copy()
    jumped[:, :, 32:] += 1.0  # a seam along x = 32 only
    assert float(seam_score(jumped, borders=([], [32]))) > 2
    # the same step measured at a place where there is none scores ~1
    assert abs(float(seam_score(jumped, borders=([], [20]))) - 1) < 0.15
    # smoothing the step over the border's neighbourhood is seen with width
    ramp = da.copy()
    ramp[:, :, 28:36] += np.linspace(0, 3.0, 8)
    ramp[:, :, 36:] += 3.0
    assert float(seam_score(ramp, borders=([], [32]), width=4)) > 1.3


def test_dim_keeps_fields_and_nan_is_left_out(rng):
    da = _noise(rng)
    da[1, :, 32:] += 1.0
    per_time = seam_score(da, borders=([], [32]), dim=[])
    assert per_time.dims == ("time",)
    assert per_time[1] > 2 * per_time[0]
    masked = da.where(da.x < 60)
    assert np.isfinite(float(seam_score(masked, borders=([32], [32]))))


def test_factor_compares_position_for_position(rng):
    """Block structure alone (steps at every block edge) is not a seam with factor=."""
    da = _noise(rng)
    i = np.arange(64) // 4
    blocks = (i[:, None] + i[None, :]) % 2  # a checkerboard of 4 x 4 blocks
    blocky = da + xr.DataArray(blocks.astype(float), dims=("y", "x"))
    plain = float(seam_score(blocky, borders=([], [16, 32, 48])))
    assert plain > 1.5  # the borders sit on block edges, like every 4th step
    assert abs(float(seam_score(blocky, borders=([], [16, 32, 48]), factor=4)) - 1) < 0.15
    with pytest.raises(InvalidInputError, match="factor"):
        seam_score(da, borders=([], [32]), factor=0)


@pytest.mark.parametrize("borders", [([0], []), ([64], []), ([3.5], []), ([],), ([], [])])
def test_bad_borders(rng, borders):
    with pytest.raises(InvalidInputError, match="border"):
        seam_score(_noise(rng), borders=borders)
