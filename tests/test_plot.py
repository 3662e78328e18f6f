
import numpy as np
import pandas as pd
import pytest
import xarray as xr

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from xstochsr.errors import InvalidInputError  # noqa: E402
from xstochsr.metrics import rank_histogram  # noqa: E402
from xstochsr.plot import plot_panel, plot_qq, plot_rank_histogram, plot_spectra  # noqa: E402


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


def test_spectra_of_masked_fields(data, tmp_path):
    # issue 15: NaN outside a radar circle gave "LSD = nan dB" over an empty plot
    import matplotlib.pyplot as plt

    _, truth, ens = data
    yy, xx = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    inside = xr.DataArray((yy - 15.5) ** 2 + (xx - 15.5) ** 2 < 16**2, dims=("y", "x"))
    ax = plot_spectra(ens.where(inside), truth.where(inside))
    title = ax.get_title()
    assert "largest valid rectangle" in title and "nan" not in title.lower()
    lsd = float(title.split("LSD = ")[1].split(" dB")[0])
    assert 0 < lsd < 100
    truth_line = ax.get_lines()[-1]
    assert np.isfinite(truth_line.get_ydata()).sum() >= 5
    saved(ax.figure, tmp_path / "masked.png")
    # nothing to estimate a spectrum on: said, not drawn
    striped = truth.where(xr.DataArray(np.arange(32) % 2 == 0, dims="y"))
    with pytest.raises(InvalidInputError, match="4 x 4"):
        plot_spectra(ens, striped)
    plt.close("all")


def test_qq_png(data, tmp_path):
    import matplotlib.pyplot as plt

    _, truth, ens = data
    ax = plot_qq(ens, truth)
    lines = ax.get_lines()
    # 6 members, the pooled line, the 1:1 line and 3 marked points
    assert len(lines) == 6 + 1 + 1 + 3
    pooled = [ln for ln in lines if ln.get_label() == "members pooled"][0]
    q = np.asarray(pooled.get_xdata())
    from xstochsr.plot import QQ_LEVELS

    levels = np.unique(np.concatenate([QQ_LEVELS, [0.9, 0.99, 0.999]]))
    np.testing.assert_allclose(q, np.quantile(truth.values, levels))
    np.testing.assert_allclose(pooled.get_ydata(), np.quantile(ens.values, levels))
    ratio = np.quantile(ens.values, 0.99) / np.quantile(truth.values, 0.99)
    assert f"0.99: {ratio:.2f}" in ax.get_title()
    saved(ax.figure, tmp_path / "qq.png")
    double = plot_qq(2 * ens, truth, log=False)
    assert double.get_xscale() == "linear"
    r2 = 2 * np.quantile(ens.values, 0.9) / np.quantile(truth.values, 0.9)
    assert f"0.9: {r2:.2f}" in double.get_title()
    with pytest.raises(InvalidInputError, match="dimensions"):
        plot_qq(ens, truth, dim=["y", "x"])
    plt.close("all")
