"""The benchmark scripts run end to end on tiny cases (no timing assertions)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from fields import tiny_model
from repo_files import load_script

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
HEADLINE = ("crps", "crps_pool4_avg", "rank_ks", "rank_kl", "outlier_proportion", "rmse",
            "lsd_db", "fss", "q99_ratio", "mass_error")


def _load(name):
    return load_script(f"benchmarks/{name}.py", f"bench_{name}")


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_headline_matches_score_table():
    from xstochsr.demo import HEADLINE as h

    assert tuple(h) == HEADLINE


def test_quality_on_a_cropped_sample(tmp_path, capsys):
    quality = _load("quality")
    weights, _ = tiny_model(factor=8, name="tiny-gen").save(tmp_path / "tiny")
    out = tmp_path / "q.csv"
    rc = quality.main(["--samples", "meteosat_rain_rate", "--crop", "64", "--members", "2",
                       "--methods", "bilinear", "rainfarm", "--model", str(weights),
                       "--no-pretrained", "--csv", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    rows = _rows(out)
    assert [r["method"] for r in rows] == ["tiny-gen", "bilinear", "rainfarm"]
    for r in rows:
        assert r["members"] == "2" and r["seed"] == "0" and r["case"] == "meteosat_rain_rate"
        for c in HEADLINE:
            assert math.isfinite(float(r[c])), (r["method"], c)
        assert 0 <= float(r["outlier_proportion"]) <= 1
        assert text.count(r["method"]) >= 2  # listed and in the table
    by = {r["method"]: r for r in rows}
    # deterministic bilinear: members identical, the rank histogram is all outliers-ish
    assert float(by["bilinear"]["rank_ks"]) > float(by["rainfarm"]["rank_ks"])
    assert float(by["rainfarm"]["mass_error"]) < 1e-5


def test_quality_on_a_user_file(tmp_path):
    quality = _load("quality")
    rng = np.random.default_rng(0)
    n = 32
    da = xr.DataArray(
        rng.gamma(0.5, 2.0, (3, n, n)).astype("float32"), dims=("time", "y", "x"),
        coords={"time": np.arange(3) * 300.0,
                "y": ("y", np.arange(n) * 1000.0, {"axis": "Y", "units": "m"}),
                "x": ("x", np.arange(n) * 1000.0, {"axis": "X", "units": "m"})},
        attrs={"units": "mm h-1"}, name="precip")
    da.coords["time"].attrs.update(axis="T", units="s")
    path = tmp_path / "fine.nc"
    da.to_dataset().to_netcdf(path)
    out = tmp_path / "user.csv"
    assert quality.main(["--data", str(path), "--var", "precip", "--members", "2",
                         "--factor", "4", "--methods", "nearest", "conservative",
                         "--no-pretrained", "--csv", str(out)]) == 0
    rows = _rows(out)
    assert [r["method"] for r in rows] == ["nearest", "conservative"]
    assert all(r["case"] == "fine" and r["factor"] == "4" for r in rows)
    assert all(math.isfinite(float(r[c])) for r in rows for c in HEADLINE)


def test_speed_tiny(tmp_path, capsys):
    speed = _load("speed")
    out = tmp_path / "s.csv"
    rc = speed.main(["--methods", "bilinear", "generator", "--sizes", "8", "16",
                     "--max-size", "8", "--steps", "2", "--members", "2",
                     "--train-steps", "0", "--workers", "1", "--csv", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "GFLOP/s" in text and "matmul" in text and "bfloat16 matmul" in text
    assert "1 worker(s):" in text and "member-frames/s" in text
    rows = _rows(out)
    assert [(r["method"], r["coarse"]) for r in rows] == [
        ("bilinear", "8"), ("bilinear", "16"), ("generator-cpu", "8"), ("generator-cpu", "16")]
    ran = [r for r in rows if r["status"] == "ok"]
    assert [r["coarse"] for r in ran] == ["8", "8"]
    for r in ran:
        for c in ("wall_s", "mpx_per_s", "frames_per_s", "peak_gb"):
            assert math.isfinite(float(r[c])) and float(r[c]) > 0
    gen = next(r for r in ran if r["method"] == "generator-cpu")
    assert float(gen["gflops"]) > 0 and float(gen["pct_peak"]) > 0
    assert float(gen["pct_bare"]) > 0
    assert all(r["status"].startswith("skipped (> --max-size") for r in rows
               if r["coarse"] == "16")


def test_speed_skips_over_the_memory_limit(capsys):
    speed = _load("speed")
    rc = speed.main(["--methods", "rainfarm", "--sizes", "64", "--steps", "2",
                     "--members", "2", "--mem-limit", "0.01", "--train-steps", "0",
                     "--workers"])
    assert rc == 1  # nothing ran
    assert "skipped (est." in capsys.readouterr().out


def test_speed_helpers():
    speed = _load("speed")
    cases = speed.cases_for([64, 128], [2, 8], [2, 4])
    assert cases == [("size", 64, 2, 2), ("size", 128, 2, 2), ("steps", 64, 8, 2),
                     ("members", 64, 2, 4)]
    f = speed.generator_flops("cpu", 8)
    assert f["per_frame_px"] > 0 and f["per_seq_px"] > 0
    big = speed.estimate_gb("generator", "cpu", 1024, 2, 2, 8)
    small = speed.estimate_gb("generator", "cpu", 64, 2, 2, 8)
    assert big > 10 * small


@pytest.mark.parametrize("text,rate", [("  0.488 steps/s (2.05 s/step), 11.7 seq", 0.488)])
def test_train_speed_parse(monkeypatch, text, rate):
    speed = _load("speed")

    class Done:
        returncode = 0
        stdout = text
        stderr = ""

    monkeypatch.setattr(speed.subprocess, "run", lambda *a, **k: Done())
    got, out = speed.train_speed(1, "cpu", 10)
    if (BENCH / "train_speed.py").is_file():
        assert got == rate and out == text.strip()
    else:
        assert got is None and "not available" in out


def test_quality_scores_only_the_generator_downscale_would_choose():
    """Units alone never pick a model: rain in m s-1-convertible units gets rain-x8 only."""
    quality = _load("quality")
    rain = xr.DataArray(np.ones((2, 2)), dims=("y", "x"), name="rain_rate",
                        attrs={"units": "mm h-1", "standard_name": "lwe_precipitation_rate"})
    assert quality.fitting_pretrained(rain, 8)[0] == ["rain-x8"]
    wind = rain.copy()
    wind.attrs.update(units="m s-1", standard_name="eastward_wind")
    assert quality.fitting_pretrained(wind, 8)[0] == ["qg-wind-x8"]
    anon = rain.copy()
    anon.name = "field"
    del anon.attrs["standard_name"]
    names, notes = quality.fitting_pretrained(anon, 8)  # mm h-1 converts to the wind's m s-1
    assert names == [] and "no standard_name" in notes[0]


def test_tiling_memory_on_a_tiny_model(tmp_path, capsys):
    bench = _load("tiling_memory")
    weights, _ = tiny_model(factor=8, name="tiny-gen").save(tmp_path / "tiny")
    assert bench.main(["--sides", "40", "--memory-limit", "20MB", "--model", str(weights),
                       "--timeout", "300", "--modes", "untiled", "tiled", "zarr",
                       "--scratch", str(tmp_path)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()
            if line.strip().startswith("40 ")]
    assert [r[2] for r in rows] == ["untiled", "tiled", "zarr"]
    untiled, tiled, zarr = rows
    assert untiled[3] == "1" and int(tiled[3]) == int(zarr[3]) == 4  # 2 x 2 tiles, 20 MB
    assert all(float(r[5]) > 0 for r in rows)  # peak RSS in MB
    for r in (tiled, zarr):
        assert float(r[7]) < 1e-4 and float(r[8]) < 1e-4  # |tiled - untiled|, abs, rel
    assert not (tmp_path / "40.zarr").exists()  # the store is removed after its row


def test_device_speed_tiny_on_the_cpu(capsys):
    """The device benchmark runs end to end on the CPU (CUDA where there is one) and prints
    one row per architecture and precision; no timing is asserted."""
    dev = _load("device_speed")
    rc = dev.main(["--device", "cpu", "--arch", "cpu", "--size", "8", "--batch", "1",
                   "--steps", "2", "--members", "1", "--matmul", "64", "--reps", "1"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "reference (this run, 64^2 matmul)" in out
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("cpu ")]
    assert [r[1] for r in rows] == ["float32", "bfloat16"]
    assert all(float(r[2]) > 0 and float(r[7]) > 0 for r in rows)  # bare, pct_bare
