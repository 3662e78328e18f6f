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
