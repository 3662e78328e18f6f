import numpy as np
import pytest
import xarray as xr
from fields import projected_field

from xstochsr.cli import main


def test_demo_writes_netcdf_and_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["demo", "--out", str(tmp_path), "--members", "4"]) == 0
    out = capsys.readouterr().out
    assert "crps" in out and "bilinear" in out and "rainfarm" in out
    png = tmp_path / "demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    ds = xr.open_dataset(tmp_path / "demo_ensemble.nc")
    assert ds.ensemble.sizes["realization"] == 4
    assert ds.ensemble.shape[-2:] == ds.truth.shape[-2:] == (256, 256)
    assert ds.coarse.shape[-2:] == (32, 32)
    assert "x_bounds" in ds and np.isfinite(ds.ensemble).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.png", "demo_ensemble.nc"]


def test_downscale_file_round_trip(tmp_path, rng):
    src = tmp_path / "in.nc"
    projected_field(rng, nt=2).to_dataset().to_netcdf(src)
    dst = tmp_path / "out.nc"
    assert main(["downscale", str(src), str(dst), "--factor", "4", "--members", "2",
                 "--model", "bilinear", "--seed", "1"]) == 0
    ds = xr.open_dataset(dst, decode_coords="all")
    assert ds.precip.dims == ("realization", "time", "y", "x")
    assert ds.precip.shape == (2, 2, 24, 28) and ds.x.encoding["bounds"] == "x_bounds"
    np.testing.assert_allclose(ds.x_bounds.mean("bounds"), ds.x)
    assert "bilinear" in ds.precip.attrs["history"]


def test_cli_errors_name_the_fix(tmp_path, rng, capsys):
    src = tmp_path / "in.nc"
    ds = projected_field(rng, nt=2).to_dataset()
    ds["other"] = ds.precip * 2
    ds.to_netcdf(src)
    assert main(["downscale", str(src), str(tmp_path / "o.nc"), "--model", "bilinear"]) == 2
    assert "--var" in capsys.readouterr().err
    assert not (tmp_path / "o.nc").exists()


def test_models_lists_baselines(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "bilinear" in out and "rainfarm" in out


def test_demo_file_is_cf_complete(tmp_path):
    """Coarse coords never name the fine bounds; cf-xarray finds X, Y, T, bounds, grid_mapping."""
    pytest.importorskip("matplotlib")
    import cf_xarray  # noqa: F401

    assert main(["demo", "--out", str(tmp_path), "--members", "2", "--model", "bilinear"]) == 0
    ds = xr.open_dataset(tmp_path / "demo_ensemble.nc", decode_coords="all")
    assert ds.coarse.cf["X"].name == "x_coarse" and ds.ensemble.cf["X"].name == "x"
    assert ds.ensemble.cf["T"].name == "time"
    assert ds.cf.bounds["X"] == ["x_bounds"] and ds.cf.bounds["Y"] == ["y_bounds"]
    assert "bounds" not in ds.x_coarse.encoding and "bounds" not in ds.x_coarse.attrs
    assert ds.ensemble.encoding["grid_mapping"] in ds.coords
    assert ds.attrs["Conventions"].startswith("CF-") and "downscaled" in ds.attrs["history"]
    assert ds.ensemble.encoding["zlib"]


def test_downscale_keeps_global_attrs_compresses_and_grid_mapping(tmp_path, rng):
    src = tmp_path / "in.nc"
    ds = projected_field(rng, nt=2).to_dataset()
    ds.attrs.update(institution="a test lab", history="2020-01-01: made")
    ds.to_netcdf(src)
    dst = tmp_path / "out.nc"
    assert main(["downscale", str(src), str(dst), "--factor", "2", "--members", "2",
                 "--model", "bilinear", "--seed", "1", "--no-progress"]) == 0
    out = xr.open_dataset(dst, decode_coords="all")
    assert out.attrs["institution"] == "a test lab"
    lines = out.attrs["history"].splitlines()
    assert lines[0] == "2020-01-01: made" and "downscaled by 2" in lines[-1]
    assert out.attrs["Conventions"] == "CF-1.8"
    assert out.precip.encoding["zlib"] and out.precip.encoding["complevel"] > 0
    assert out.precip.encoding["grid_mapping"] == "crs" and "crs" in out.coords


def test_downscale_target_grid_batch_and_no_conserve(tmp_path, rng):
    src = tmp_path / "in.nc"
    da = projected_field(rng, nt=2, ny=8, nx=8)
    da.to_dataset().to_netcdf(src)
    tgt = tmp_path / "grid.nc"
    xs = np.linspace(float(da.x[1]), float(da.x[-2]), 5)
    ys = np.linspace(float(da.y[1]), float(da.y[-2]), 4)
    xr.Dataset(coords={"x": ("x", xs, da.x.attrs), "y": ("y", ys, da.y.attrs),
                       "crs": da.crs}).to_netcdf(tgt)
    dst = tmp_path / "out.nc"
    assert main(["downscale", str(src), str(dst), "--factor", "2", "--members", "3",
                 "--model", "bilinear", "--seed", "1", "--batch-size", "1",
                 "--target-grid", str(tgt), "--no-conserve", "--no-progress"]) == 0
    out = xr.open_dataset(dst)
    assert out.precip.shape == (3, 2, 4, 5)
    assert "regridded" in out.precip.attrs["history"]


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    rc = main(["downscale", str(tmp_path / "nope.nc"), str(tmp_path / "o.nc")])
    err = capsys.readouterr().err
    assert rc == 2 and "does not exist" in err and "nope.nc" in err
    assert "Traceback" not in err


def test_errors_spell_flags_not_keywords(tmp_path, capsys):
    from fields import latlon_field

    src = tmp_path / "in.nc"
    da = latlon_field(np.random.default_rng(0), units="K")
    da.attrs["standard_name"] = "air_temperature"
    da.to_dataset().to_netcdf(src)
    assert main(["downscale", str(src), str(tmp_path / "o.nc"), "--factor", "2"]) == 2
    err = capsys.readouterr().err
    assert "--model" in err and "model=" not in err


def test_every_option_has_help():
    import argparse

    from xstochsr.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"demo", "downscale", "train", "verify", "regrid", "models"} <= set(sub.choices)
    missing = [f"{name} {a.dest}" for name, p in sub.choices.items() for a in p._actions
               if not isinstance(a, argparse._HelpAction) and not a.help]
    assert missing == []


def test_verify_and_regrid_subcommands(tmp_path, rng, capsys):
    da = projected_field(rng, nt=2, ny=8, nx=8)
    coarse = tmp_path / "coarse.nc"
    da.sr.coarsen(2).to_dataset(name="precip").to_netcdf(coarse)
    truth = tmp_path / "truth.nc"
    da.to_dataset().to_netcdf(truth)
    ens = tmp_path / "ens.nc"
    assert main(["downscale", str(coarse), str(ens), "--factor", "2", "--members", "3",
                 "--model", "bilinear", "--seed", "0", "--no-progress"]) == 0
    scores = tmp_path / "scores.nc"
    assert main(["verify", str(ens), str(truth), "--out", str(scores)]) == 0
    out = capsys.readouterr().out
    assert "crps" in out and xr.open_dataset(scores).crps.size == 1
    regridded = tmp_path / "regridded.nc"
    assert main(["regrid", str(truth), str(coarse), str(regridded), "--method",
                 "conservative"]) == 0
    r = xr.open_dataset(regridded, decode_coords="all")
    c = xr.open_dataset(coarse)
    assert r.precip.shape == c.precip.shape
    np.testing.assert_allclose(r.precip, c.precip, rtol=1e-5)
    assert r.attrs["Conventions"] == "CF-1.8"


def _dead_address() -> str:
    """A tcp address where nothing listens: a port the OS just handed out, closed again."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


@pytest.mark.parametrize("output", ["o.nc", "o.zarr"])
def test_dead_scheduler_is_refused_quickly_and_writes_nothing(tmp_path, rng, capsys, output):
    import time

    src = tmp_path / "in.nc"
    projected_field(rng, nt=2).to_dataset().to_netcdf(src)
    address = _dead_address()
    t0 = time.perf_counter()
    rc = main(["downscale", str(src), str(tmp_path / output), "--model", "bilinear",
               "--factor", "4", "--scheduler", address, "--scheduler-timeout", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and time.perf_counter() - t0 < 8
    assert address in err and "dask scheduler" in err and "drop --scheduler" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.nc"]  # no store, no states


def test_malformed_scheduler_address_names_the_form(tmp_path, rng, capsys):
    src = tmp_path / "in.nc"
    projected_field(rng, nt=2).to_dataset().to_netcdf(src)
    rc = main(["downscale", str(src), str(tmp_path / "o.nc"), "--model", "bilinear",
               "--scheduler", "scheduler-without-port"])
    err = capsys.readouterr().err
    assert rc == 2 and "tcp://" in err and "scheduler-without-port" in err
    assert not (tmp_path / "o.nc").exists()


def test_downscale_on_a_running_scheduler(tmp_path, rng):
    """--scheduler sends the work to the cluster and gives the in-process file's values."""
    distributed = pytest.importorskip("distributed")
    src = tmp_path / "in.nc"
    projected_field(rng, nt=3).to_dataset().to_netcdf(src)
    common = ["--factor", "4", "--members", "2", "--model", "bilinear", "--seed", "1",
              "--time-chunk", "2"]
    assert main(["downscale", str(src), str(tmp_path / "local.nc"), *common]) == 0
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        assert main(["downscale", str(src), str(tmp_path / "remote.nc"), *common,
                     "--scheduler", cluster.scheduler_address]) == 0
        ran = set(cluster.scheduler.task_prefixes)
    assert ran, "no task reached the scheduler"
    local = xr.open_dataset(tmp_path / "local.nc").precip
    remote = xr.open_dataset(tmp_path / "remote.nc").precip
    xr.testing.assert_equal(local, remote)  # values and coordinates; history has a clock
    assert local.attrs.keys() == remote.attrs.keys()
