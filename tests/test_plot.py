
import numpy as np
import pandas as pd
import pytest
import xarray as xr

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from xstochsr.errors import InvalidInputError  # noqa: E402
from xstochsr.metrics import rank_histogram  # noqa: E402
from xstochsr.plot import plot_panel, plot_rank_histogram, plot_spectra  # noqa: E402


def field(values, dx):
    values = np.asarray(values, dtype=float)
    dims = ("time", "y", "x") if values.ndim == 3 else ("realization", "time", "y", "x")
    n = dict(zip(dims, values.shape, strict=True))
    coords = {
        "time": pd.date_range("2021-07-01", periods=n["time"], freq="5min"),
        "y": ("y", dx * (np.arange(n["y"]) + 0.5), {"axis": "Y", "units": "km"}),
        "x": ("x", dx * (np.arange(n["x"]) + 0.5), {"axis": "X", "units": "km"}),
    }
    attrs = {"units": "mm/h", "long_name": "rain rate"}
    return xr.DataArray(values, dims=dims, coords=coords, name="precip", attrs=attrs)


@pytest.fixture
def data():
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    truth = field(gaussian_filter(rng.gamma(0.5, 4.0, (2, 32, 32)), (0, 2, 2)), 1.0)
    ens = field(gaussian_filter(rng.gamma(0.5, 4.0, (6, 2, 32, 32)), (0, 0, 2, 2)), 1.0)
    coarse = truth.coarsen(y=8, x=8).mean()
    return coarse, truth, ens


def saved(fig, path):
    fig.savefig(path, dpi=60)
    assert path.exists() and path.stat().st_size > 5000
    return path


def test_rank_histogram_png(data, tmp_path):
    import matplotlib.pyplot as plt

    _, truth, ens = data
    rh = rank_histogram(ens, truth, dim=["y", "x"])  # extra dim 'time' is summed
    ax = plot_rank_histogram(rh)
    assert "KS = " in ax.get_title()
    assert f"{rank_histogram(ens, truth).attrs['ks']:.3f}" in ax.get_title()
    assert len(ax.patches) == 7
    heights = [p.get_height() for p in ax.patches]
    assert sum(heights) == pytest.approx(1.0)
    line = ax.get_lines()[0]
    assert line.get_ydata()[0] == pytest.approx(1 / 7)
    saved(ax.figure, tmp_path / "rank.png")
    fig, given = plt.subplots()
    assert plot_rank_histogram(rh.chunk(), ax=given) is given
    plt.close("all")


def test_panel_png(data, tmp_path):
    import matplotlib.pyplot as plt

    coarse, truth, ens = data
    fig, axes = plot_panel(coarse, truth, ens, members=3, isel={"time": 1})
    assert len(axes) == 5
    assert [a.get_title() for a in axes] == [
        "coarse input",
        "truth",
        "member 0",
        "member 1",
        "member 2",
    ]
    limits = {a.collections[0].get_clim() for a in axes}
    assert len(limits) == 1  # one shared colour scale
    lo, hi = limits.pop()
    assert hi == pytest.approx(
        max(float(truth.isel(time=1).max()), float(ens.isel(time=1, realization=[0, 1, 2]).max()))
    )
    # coarse and fine panels cover the same area
    assert axes[0].get_xlim() == pytest.approx(axes[1].get_xlim())
    saved(fig, tmp_path / "panel.png")
    fig2, axes2 = plot_panel(coarse, truth, ens, members=[4, 5])
    assert "time=" in fig2.get_suptitle()
    assert axes2[-1].get_title() == "member 5"
    plt.close("all")


def test_spectra_png(data, tmp_path):
    import matplotlib.pyplot as plt

    _, truth, ens = data
    ax = plot_spectra(ens, truth)
    assert "LSD = " in ax.get_title()
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert len(ax.get_lines()) == 6 + 2
    saved(ax.figure, tmp_path / "spectra.png")
    with pytest.raises(InvalidInputError, match="dimensions"):
        plot_spectra(ens, truth, dim=[])
    plt.close("all")


def test_bad_input():
    with pytest.raises(InvalidInputError):
        plot_rank_histogram(xr.DataArray([1, 2], dims="x"))
    with pytest.raises(InvalidInputError, match="empty"):
        plot_rank_histogram(xr.DataArray([0, 0], dims="rank"))
