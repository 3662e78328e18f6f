"""Tiled inference (xstochsr.tiling, downscale(memory_limit=, tile=)): tiled == untiled."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr
from fields import RAIN_TRANSFORM, projected_field, rain_values, tiny_model

import xstochsr
from xstochsr import tiling
from xstochsr.errors import InvalidInputError, TilingError, XStochSRError
from xstochsr.grid import coarsen_field
from xstochsr.metrics import crps, power_spectrum, seam_score

NY, NX, NT = 32, 28, 3


def _model(constraint=None, factor=2, seed=0):
    """A tiny untrained generator, optionally with a constraint layer."""
    from xstochsr.models.base import ModelCard
    from xstochsr.models.gan import GANModel
    from xstochsr.models.generator import Generator, GeneratorConfig

    if constraint is None:
        return tiny_model(factor=factor, width=8, noise_channels=4, seed=seed)
    torch.manual_seed(seed)
    cfg = GeneratorConfig(factor=factor, width=8, noise_channels=4, encoder_blocks=1,
                          init_blocks=1, constraint=constraint,
                          output_activation="sigmoid")
    card = ModelCard(name=f"tiny-{constraint}", units="mm h-1",
                     standard_name="lwe_precipitation_rate", variable="precip",
                     transform=RAIN_TRANSFORM)
    return GANModel(Generator(cfg), card)


@pytest.fixture(scope="module")
def field():
    return projected_field(np.random.default_rng(3), nt=NT, ny=NY, nx=NX)


def _down(da, model, **kw):
    kw.setdefault("members", 2)
    return xstochsr.downscale(da, model=model, seed=4, progress=False, **kw)


def _rel(a, b):
    return float(abs(a - b).max()) / float(abs(b).max())


# --- receptive field ---------------------------------------------------------------------


@pytest.mark.parametrize("fresh", [True, False])
@pytest.mark.parametrize("make", [lambda: _model(factor=4), lambda: _model("multiplicative")])
def test_perturbation_outside_receptive_field_changes_nothing(make, fresh):
    """One frame (fresh state, or a carried one): changing one coarse cell changes the
    output no farther than the receptive field, and almost that far (not a loose bound)."""
    m = make()
    f, rf = m.generator.config.factor, tiling.receptive_field(m.generator.config)
    n = 2 * rf + 7
    x = rain_values(np.random.default_rng(1), (1, 2, n, n)) + 0.5
    state = None if fresh else m.run(x[:, :1], factor=f, members=[0], seed=0)[1]
    xs = x[:, 1:]
    y0, _ = m.run(xs, factor=f, members=[0], seed=0, state=state)
    c = n // 2

    xp = xs.copy()
    xp[..., c, c] += 5.0
    y1, _ = m.run(xp, factor=f, members=[0], seed=0, state=state)
    d = np.abs(y1 - y0)[0, 0, 0].reshape(n, f, n, f).max(axis=(1, 3))
    yy, xx = np.nonzero(d > 1e-6 * np.abs(y0).max())  # coarse cells whose output changed
    reach = max(np.abs(yy - c).max(), np.abs(xx - c).max())
    assert rf - 5 <= reach <= rf


def test_receptive_field_from_config():
    from xstochsr.models.generator import GeneratorConfig

    small = tiling.receptive_field(GeneratorConfig(factor=2, width=8, noise_channels=4,
                                                   encoder_blocks=1, init_blocks=1))
    deeper = tiling.receptive_field(GeneratorConfig(factor=2, width=8, noise_channels=4,
                                                    encoder_blocks=3, init_blocks=1))
    assert small == 10 and deeper == small + 4  # 5 state + 4.5 decoder; 2 per block
    assert tiling.receptive_field(GeneratorConfig(factor=8, width=48, encoder_blocks=2,
                                                  init_blocks=1)) == 13  # rain-x8's network
    # the constraint layers reach further (their iterations); the shipped models' cards
    assert tiling.receptive_field(xstochsr.load_model("rain-x8").generator.config) == 32
    assert tiling.receptive_field(xstochsr.load_model("qg-uv-x8").generator.config) == 26


@pytest.mark.parametrize(("constraint", "prior"), [("multiplicative", "smooth"),
                                                   ("additive", "bilinear")])
def test_iterative_constraint_layers_stay_within_the_receptive_field(constraint, prior):
    """The smooth and spreading layers iterate over neighbours: the halo counts them."""
    from xstochsr.models.base import ModelCard
    from xstochsr.models.gan import GANModel
    from xstochsr.models.generator import Generator, GeneratorConfig

    torch.manual_seed(0)
    cfg = GeneratorConfig(factor=2, width=8, noise_channels=4, encoder_blocks=1,
                          init_blocks=1, constraint=constraint, constraint_prior=prior,
                          output_activation="sigmoid" if prior == "smooth" else "none")
    m = GANModel(Generator(cfg), ModelCard(name="t", units="mm h-1", transform=RAIN_TRANSFORM))
    rf = tiling.receptive_field(cfg)
    assert rf > tiling.receptive_field(GeneratorConfig(factor=2, width=8, noise_channels=4,
                                                       encoder_blocks=1, init_blocks=1))
    n = 2 * rf + 7
    x = rain_values(np.random.default_rng(1), (1, 1, n, n)) + 0.5
    y0, _ = m.run(x, factor=2, members=[0], seed=0)
    xp = x.copy()
    xp[..., n // 2, n // 2] += 5.0
    y1, _ = m.run(xp, factor=2, members=[0], seed=0)
    d = np.abs(y1 - y0)[0, 0, 0].reshape(n, 2, n, 2).max(axis=(1, 3))
    yy, xx = np.nonzero(d > 0)
    assert max(np.abs(yy - n // 2).max(), np.abs(xx - n // 2).max()) <= rf


def test_shipped_smooth_model_tiles_exactly_and_needs_its_halo(monkeypatch):
    """rain-x8's smooth layer: tiled == untiled with the layer's reach in the halo; with
    the network's reach alone (13 cells) the tiles' edges differ by mm h-1."""
    m = xstochsr.load_model("rain-x8")
    rng = np.random.default_rng(0)
    da = projected_field(rng, nt=2, ny=72, nx=72, dx=24000.0)
    ref = _down(da, m, members=1)
    assert _rel(_down(da, m, members=1, tile=24), ref) < 1e-5
    monkeypatch.setattr(tiling, "receptive_field", lambda cfg: 13)
    assert float(abs(_down(da, m, members=1, tile=24) - ref).max()) > 1e-2


# --- tiled == untiled ----------------------------------------------------------------------


@pytest.mark.parametrize("constraint", [None, "multiplicative", "additive"])
def test_tiled_equals_untiled(field, constraint):
    m = _model(constraint)
    ref = _down(field, m)
    tiled = _down(field, m, tile=14)
    assert tiled.dims == ref.dims and tiled.shape == ref.shape
    assert _rel(tiled, ref) < 1e-5  # everywhere, blending zones included
    # block means exact: the model's constraint layer, or conserve= after blending
    back = coarsen_field(tiled, 2)
    np.testing.assert_allclose(back.values, np.broadcast_to(field.values, back.shape),
                               rtol=2e-6, atol=2e-6)


def test_tiled_is_not_a_no_op(field):
    """The layout really cuts: several windows, halo as planned, cores aligned to the tile
    (the chunks of a store), nothing blended."""
    m = _model()
    tp, _ = tiling.plan(m, (NY, NX), batch=4, memory_limit=1 << 40, tile=12)
    wins = tp.windows()
    assert len(wins) == 3 * 3 and tp.halo == 10 and tp.ramp == 0 and tp.aligned
    out = _down(field, m, tile=12)
    assert json.loads(out.attrs["xstochsr_tiles"]) == {"tile": 12, "halo": 10}
    assert "xstochsr_tiles" not in _down(field, m).attrs
    assert sorted({w.core[:2] for w in wins}) == [(0, 12), (12, 24), (24, 32)]
    cores = np.zeros((NY, NX), int)
    for w in wins:
        cores[w.core[0] : w.core[1], w.core[2] : w.core[3]] += 1
    assert (cores == 1).all()  # cores partition the domain
    assert any(w.extent != (0, NY, 0, NX) for w in wins)


def test_halo_is_what_makes_tiles_exact(field):
    """Too small a halo leaves visible differences (so the equality above can fail)."""
    m = _model()
    x = field.values[None].astype(np.float32)
    ref, _ = m.run(x, factor=2, members=[0], seed=1)
    short = tiling.TilePlan((NY, NX), 12, halo=2)
    y, _ = tiling.run_tiled(m, x, short, factor=2, members=[0], seed=1)
    assert _rel(y, ref) > 1e-3
    full = tiling.TilePlan((NY, NX), 12, halo=tiling.receptive_field(m.generator.config))
    y, _ = tiling.run_tiled(m, x, full, factor=2, members=[0], seed=1)
    assert _rel(y, ref) < 1e-5


def test_same_member_whatever_tile_time_chunk_and_members(field):
    m = _model()
    a = _down(field, m, tile=12, time_chunk=1, members=[1])
    b = _down(field, m, tile=20, time_chunk=2, members=3).sel(realization=[1])
    c = _down(field, m, members=[1])
    assert _rel(a, b) < 1e-5 and _rel(a, c) < 1e-5


def test_memory_limit_tiles_and_matches(field):
    m = _model()
    whole = tiling.working_set(m.generator.config, NY, NX)
    assert tiling.plan(m, (NY, NX), batch=4, memory_limit=10 * whole)[0] is None
    limit = int(0.8 * whole)  # a small domain: the 10-cell halo allows 2 x 2 tiles at most
    tp, batch = tiling.plan(m, (NY, NX), batch=4, memory_limit=limit)
    assert tp is not None and batch == 1 and len(tp.windows()) == 4
    ext = tiling._largest_extent(tp)
    assert tiling.working_set(m.generator.config, *ext) <= limit
    assert whole > limit and tp.tile == 16  # fewest tiles (one is too big), equal sides
    ref = _down(field, m)
    assert _rel(_down(field, m, memory_limit=limit), ref) < 1e-5
    assert _rel(_down(field, m, memory_limit=f"{limit / 1e6:.6f}MB"), ref) < 1e-5


@pytest.mark.parametrize("constraint", [None, "multiplicative"])
def test_lazy_tiles_are_tasks_chunked_by_tile_and_frame(tmp_path, field, constraint):
    """Dask input: one task per (member block, tile, frame), the output chunked by tile
    core and frame, the same bits as in memory; ens.to_zarr streams it chunk by chunk."""
    m = _model(constraint)
    eager = _down(field, m, tile=12, members=3, batch_size=2)
    lazy = _down(field.chunk(time=2), m, tile=12, members=3, batch_size=2)
    assert lazy.chunksizes["y"] == (24, 24, 16) and lazy.chunksizes["x"] == (24, 24, 8)
    assert lazy.chunksizes["time"] == (1,) * NT
    assert lazy.chunksizes["realization"] == (2, 1)
    graph = dict(lazy.data.__dask_graph__())
    assert sum(str(k[0] if isinstance(k, tuple) else k).startswith("_tile_task")
               for k in graph) == 2 * 9 * NT  # member blocks x tiles x frames
    np.testing.assert_array_equal(lazy.values, eager.values)
    lazy.to_dataset().to_zarr(tmp_path / "lazy.zarr", consolidated=False)
    np.testing.assert_array_equal(xr.open_zarr(tmp_path / "lazy.zarr", consolidated=False)[
                                      "precip"].values,
                                  eager.values)


def test_lazy_input_tiles_too(field):
    m = _model()
    lazy = _down(field.chunk(time=2), m, tile=14)
    assert lazy.chunks is not None
    assert _rel(lazy.compute(), _down(field, m)) < 1e-5


def test_scores_and_spectra_within_one_percent(field):
    m = _model("multiplicative")
    ref, tiled = _down(field, m, members=4), _down(field, m, members=4, tile=14)
    obs = ref.isel(realization=0, drop=True) * 1.1
    c_ref, c_tiled = float(crps(ref, obs)), float(crps(tiled, obs))
    assert abs(c_tiled / c_ref - 1) < 0.01
    s_ref = power_spectrum(ref.isel(time=0))
    s_tiled = power_spectrum(tiled.isel(time=0))
    assert float(abs(s_tiled / s_ref - 1).max()) < 0.01


# --- seams ------------------------------------------------------------------------------


def test_seam_score_one_when_tiled_above_when_naive():
    m = _model()
    x = rain_values(np.random.default_rng(5), (1, 3, 48, 48)) + 0.2
    tile = 16
    borders = tiling.tile_borders((48, 48), tile, 2)
    assert borders == ([32, 64], [32, 64])
    good, _ = tiling.run_tiled(m, x, tiling.TilePlan((48, 48), tile, 10, 0, aligned=True),
                               factor=2, members=[0, 1], seed=3)  # plan()'s layout
    naive, _ = tiling.run_tiled(m, x, tiling.TilePlan((48, 48), tile, 0, 0, aligned=True),
                                factor=2, members=[0, 1], seed=3)
    dims = ("realization", "seq", "time", "y", "x")
    score_good = float(seam_score(xr.DataArray(good, dims=dims), borders=borders, factor=2))
    score_naive = float(seam_score(xr.DataArray(naive, dims=dims), borders=borders, factor=2))
    assert 0.9 < score_good < 1.1  # 1.008 when written
    assert score_naive > 1.5  # 2.05 when written: no halo


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("tile", [0, -3, 2.5, "8", True])
def test_tile_must_be_positive_int(field, tile):
    with pytest.raises(InvalidInputError, match="tile must be an integer >= 1"):
        _down(field, _model(), tile=tile)


def test_tile_larger_than_domain(field):
    with pytest.raises(TilingError, match=r"tile=32 covers the whole 32 x 28.*tile=None"):
        _down(field, _model(), tile=32)


def test_halo_larger_than_domain():
    small = projected_field(np.random.default_rng(0), nt=2, ny=20, nx=20)
    with pytest.raises(TilingError, match="halo of 10 coarse cells.*whole domain.*at most 9"):
        _down(small, _model(), tile=10)
    assert _rel(_down(small, _model(), tile=9), _down(small, _model())) < 1e-5


def test_memory_budget_too_small(field):
    with pytest.raises(TilingError, match=r"too small for one tile.*Raise memory_limit"):
        _down(field, _model(), memory_limit="1KB")


@pytest.mark.parametrize("limit", ["lots", "-4GB", 0, -1, 1.5e9, True, "4 parsecs"])
def test_memory_limit_must_be_bytes(field, limit):
    with pytest.raises(InvalidInputError, match="memory_limit must be a positive"):
        _down(field, _model(), memory_limit=limit)


def test_errors_are_in_the_package_tree():
    assert issubclass(TilingError, InvalidInputError) and issubclass(TilingError, XStochSRError)


@pytest.mark.parametrize("text,expected", [("4GB", 4 * 10**9), ("512MiB", 512 * 2**20),
                                           ("1.5 gb", 1_500_000_000), (1000, 1000)])
def test_memory_limit_parsing(text, expected):
    from xstochsr.validation import check_memory_limit

    assert check_memory_limit(text) == expected
    assert check_memory_limit(None) > 0


def test_baselines_are_not_tiled(field):
    """Interpolation and RainFARM are exempt: cheap, and RainFARM's fit is global."""
    assert tiling.plan(xstochsr.load_model("bilinear"), (NY, NX), batch=3, memory_limit=1,
                       tile=4) == (None, 3)
    ref = xstochsr.downscale(field, 2, 1, model="bilinear", seed=0, progress=False)
    out = xstochsr.downscale(field, 2, 1, model="bilinear", seed=0, progress=False, tile=4)
    xr.testing.assert_identical(ref.drop_attrs(), out.drop_attrs())


def test_cli_tile_and_memory_limit(tmp_path, field, capsys):
    from xstochsr.cli import main

    m = _model()
    weights, _ = m.save(tmp_path / "tiny")
    src = tmp_path / "in.nc"
    field.to_netcdf(src)
    args = ["downscale", str(src), None, "--model", str(weights), "--members", "2",
            "--seed", "4", "--no-progress"]
    outs = {}
    for name, extra in {"plain": [], "tile": ["--tile", "14"],
                        "limit": ["--memory-limit", "0.95MB"]}.items():
        args[2] = str(tmp_path / f"{name}.nc")
        assert main(args + extra) == 0
        outs[name] = xr.open_dataset(args[2])["precip"].load()
    assert _rel(outs["tile"], outs["plain"]) < 1e-5
    assert _rel(outs["limit"], outs["plain"]) < 1e-5
    args[2] = str(tmp_path / "bad.nc")
    assert main(args + ["--tile", "32"]) == 2
    assert "--tile 32 covers the whole" in capsys.readouterr().err


@pytest.mark.parametrize("constraint", ["multiplicative", "additive"])
def test_constraint_restored_after_blending_unlike_tiles(constraint):
    """Tiles that disagree (no halo) blend to fields whose block means drift; the
    constraint's conservation is re-applied after blending, so they are exact."""
    m = _model(constraint)
    x = rain_values(np.random.default_rng(2), (1, 2, 24, 24)) + 0.3
    y, _ = tiling.run_tiled(m, x, tiling.TilePlan((24, 24), 8, halo=0, ramp=2), factor=2,
                            members=[0], seed=0)
    means = y.reshape(1, 1, 2, 24, 2, 24, 2).mean(axis=(4, 6), dtype=np.float64)
    np.testing.assert_allclose(means, np.broadcast_to(x, means.shape), rtol=2e-6, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="needs a GPU machine and none was available here; run on a GPU "
                           "machine: python -m pytest tests/test_tiling.py -k cuda")
@pytest.mark.parametrize("constraint", [None, "multiplicative"])
def test_cuda_tiled_equals_cpu_untiled(field, constraint):
    """The CUDA path of tiling: same members as the CPU's untiled run, block means exact."""
    m = _model(constraint)
    ref = _down(field, m)
    tiled = _down(field, m, tile=14, device="cuda")
    assert _rel(tiled, ref) < 1e-4
    back = coarsen_field(tiled, 2)
    np.testing.assert_allclose(back.values, np.broadcast_to(field.values, back.shape),
                               rtol=1e-5, atol=1e-5)
