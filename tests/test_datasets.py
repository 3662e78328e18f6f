"""xstochsr.datasets: the registry, packaged samples, and real downloads from 127.0.0.1.

Every download test starts its own HTTP server on a free port of 127.0.0.1 and uses a
temporary cache (XSTOCHSR_DATA_DIR); the user's real cache is never touched.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

cf_xarray = pytest.importorskip("cf_xarray")
pytest.importorskip("pooch")

from xstochsr import datasets  # noqa: E402
from xstochsr.errors import DataFetchError, XStochSRError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entries(path: Path) -> list[tuple[int, str, str]]:
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        s = line.strip()
        if s and not s.startswith("#"):
            fields = s.split()
            assert len(fields) == 2, f"line {i + 1}: expected '<path> sha256:<hex>': {line!r}"
            out.append((i, fields[0], fields[1]))
    return out


# --- a local HTTP server ------------------------------------------------------------------


class _Server:
    def __init__(self, root: Path):
        self.root = root
        self.requests: list[str] = []
        handler = functools.partial(self._Handler, directory=str(root))
        handler.server_ref = self  # type: ignore[attr-defined]
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.requests = self.requests  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    class _Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.server.requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):  # keep pytest output clean
            pass

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def put(self, key: str, data: bytes) -> None:
        p = self.root / key
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    srv = _Server(tmp_path / "server")
    yield srv
    srv.close()


@pytest.fixture
def remote(tmp_path, monkeypatch, server):
    """A registry with two remote files (plus the real packaged entries), a fresh cache."""
    files = {
        "weights/tiny_model.safetensors": b"\x00weights\x01" * 500,
        "remote_samples/remote_sample.nc": b"not really netcdf" * 100,
    }
    reg = tmp_path / "registry.txt"
    text = datasets.registry_path().read_text(encoding="utf-8")
    for key, data in files.items():
        server.put(key, data)
        text += f"# test entry\n{key} sha256:{_sha(data)}\n"
    reg.write_text(text, encoding="utf-8")
    monkeypatch.setattr(datasets, "registry_path", lambda: reg)
    cache = tmp_path / "cache"
    monkeypatch.setenv("XSTOCHSR_DATA_DIR", str(cache))
    monkeypatch.setenv("XSTOCHSR_DATA_URL", server.url)
    return {"files": files, "cache": cache, "server": server, "registry": reg}


def _cached_files(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []


# --- the registry ---------------------------------------------------------------------------


def test_packaged_registry_is_a_byte_identical_copy_of_the_root_registry():
    root = ROOT / "data_registry.txt"
    if not root.exists():
        pytest.skip("not a source checkout")
    assert datasets.registry_path().read_bytes() == root.read_bytes(), (
        "xstochsr/data/registry.txt differs from data_registry.txt: run "
        "python scripts/make_samples.py --sync-registry"
    )


def test_registry_entries_are_well_formed_and_documented():
    path = datasets.registry_path()
    lines = path.read_text(encoding="utf-8").splitlines()
    entries = _entries(path)
    assert entries
    for i, key, digest in entries:
        assert digest.startswith("sha256:") and len(digest) == 7 + 64, key
        assert lines[i - 1].lstrip().startswith("#"), f"{key}: no provenance comment above"
    keys = [k for _, k, _ in entries]
    assert len(keys) == len(set(keys))


def test_every_listed_file_in_the_checkout_matches_its_hash():
    for _, key, digest in _entries(datasets.registry_path()):
        local = ROOT / key
        if local.exists():
            assert datasets.file_hash(local) == digest.split(":", 1)[1], key


def test_file_hash_matches_hashlib(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"abc" * 1000)
    assert datasets.file_hash(p) == _sha(b"abc" * 1000)
    assert datasets.file_hash(p, "md5") == hashlib.md5(b"abc" * 1000).hexdigest()


# --- packaged samples ---------------------------------------------------------------------


def test_list_samples_has_the_main_demo_sample():
    names = datasets.list_samples()
    assert "meteosat_rain_rate" in names
    assert names == sorted(names)


@pytest.mark.parametrize("name", datasets.list_samples())
def test_packaged_samples_verify_and_are_cf_complete(name):
    ds = datasets.open_sample(name)
    assert {"license", "source", "history", "references", "provenance"} <= set(ds.attrs)
    axes = ds.cf.axes
    for ax in ("X", "Y", "T"):
        assert len(axes.get(ax, [])) == 1, (name, ax, axes)
    bounds = ds.cf.bounds
    for ax in ("X", "Y"):
        assert ax in bounds, (name, bounds)
        b = ds[bounds[ax][0]]
        c = ds[axes[ax][0]]
        np.testing.assert_allclose(b.mean(b.dims[-1]), c, rtol=0, atol=1e-6 * float(abs(c).max()))
    assert ds.cf.grid_mapping_names, name
    for v in ds.data_vars.values():
        if v.ndim < 2:
            continue
        assert v.attrs.get("units"), (name, v.name)
        assert v.attrs.get("standard_name"), (name, v.name)
        # decode_coords="all" moves the attribute to .encoding and the variable to coords
        gm = ds[v.encoding.get("grid_mapping") or v.attrs["grid_mapping"]]
        assert gm.attrs["grid_mapping_name"]
        assert "crs_wkt" in gm.attrs
    geographic = gm.attrs["grid_mapping_name"] == "latitude_longitude"
    for std, units in (("latitude", "degrees_north"), ("longitude", "degrees_east")):
        c = ds.cf[std]  # 2-D on a projected grid, the dimension itself on a lat/lon grid
        assert c.attrs["units"] == units
        assert c.dims == (c.name,) if geographic else c.ndim == 2


def test_main_sample_is_real_rain_ready_for_a_coarsen_by_8_demo():
    ds = datasets.open_sample("meteosat_rain_rate")
    rr = ds.rain_rate
    assert rr.dtype == np.float32
    assert rr.attrs["units"] == "mm h-1"
    assert rr.attrs["standard_name"] == "lwe_precipitation_rate"
    assert rr.sizes["x"] == rr.sizes["y"] == 256 and rr.sizes["time"] == 1
    assert np.isfinite(rr).all()
    wet = float((rr > 0).mean())
    assert 0.2 < wet < 0.9
    assert 0 <= float(rr.min()) and float(rr.max()) <= 35.0 + 1e-3
    coarse = rr.coarsen(x=8, y=8).mean()
    assert coarse.shape == (1, 32, 32)
    assert str(ds.time.values[0]).startswith("2008-12-11T16:45")
    # units convert with pint (mm h-1 is a rate of the dimensionality of CF's m s-1)
    from cf_xarray.units import units

    assert units(rr.attrs["units"]).to("m s-1").magnitude == pytest.approx(1 / 3.6e6)


def test_open_sample_accepts_file_names_and_chunks():
    a = datasets.open_sample("meteosat_rain_rate.nc")
    b = datasets.open_sample("xstochsr/data/meteosat_rain_rate.nc", chunks={})
    assert b.rain_rate.chunks is not None
    np.testing.assert_array_equal(a.rain_rate.values, b.rain_rate.values)
    b.close()


def test_packaged_files_are_served_in_place_and_never_downloaded(remote):
    path = datasets.fetch("meteosat_rain_rate")
    assert path.parent == Path(datasets.__file__).parent / "data"
    assert remote["server"].requests == []
    assert _cached_files(remote["cache"]) == []


def test_a_damaged_packaged_file_is_refused(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    (pkg / "data").mkdir(parents=True)
    shutil.copy(datasets.registry_path(), pkg / "data" / "registry.txt")
    src = datasets.fetch("meteosat_rain_rate")
    bad = bytearray(src.read_bytes())
    bad[len(bad) // 2] ^= 0xFF
    (pkg / "data" / src.name).write_bytes(bytes(bad))
    monkeypatch.setattr(datasets, "_PACKAGE_DIR", pkg)
    with pytest.raises(DataFetchError, match="does not match its registry hash"):
        datasets.fetch("meteosat_rain_rate")


def test_a_packaged_file_missing_from_the_install_is_downloaded(tmp_path, monkeypatch, server):
    src = Path(datasets.__file__).parent / "data" / "meteosat_rain_rate_balkans.nc"
    server.put("xstochsr/data/meteosat_rain_rate_balkans.nc", src.read_bytes())
    pkg = tmp_path / "pkg"
    (pkg / "data").mkdir(parents=True)
    shutil.copy(datasets.registry_path(), pkg / "data" / "registry.txt")
    monkeypatch.setattr(datasets, "_PACKAGE_DIR", pkg)
    monkeypatch.setenv("XSTOCHSR_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XSTOCHSR_DATA_URL", server.url)
    ds = datasets.open_sample("meteosat_rain_rate_balkans")
    assert ds.rain_rate.shape == (1, 256, 256)
    assert server.requests == ["/xstochsr/data/meteosat_rain_rate_balkans.nc"]
    assert (tmp_path / "cache" / "xstochsr/data/meteosat_rain_rate_balkans.nc").is_file()


# --- downloads from the local server --------------------------------------------------------


def test_real_download_is_hash_checked_and_the_cache_is_reused(remote):
    key = "weights/tiny_model.safetensors"
    path = datasets.fetch("tiny_model.safetensors")
    assert path == remote["cache"] / key
    assert path.read_bytes() == remote["files"][key]
    assert remote["server"].requests == ["/" + key]
    again = datasets.fetch(key)
    assert again == path
    assert remote["server"].requests == ["/" + key], "second fetch must not hit the server"


def test_a_corrupted_download_is_refused_and_not_kept(remote):
    key = "weights/tiny_model.safetensors"
    remote["server"].put(key, b"tampered" * 100)
    with pytest.raises(DataFetchError, match="hash does not match") as info:
        datasets.fetch(key)
    assert isinstance(info.value, XStochSRError) and isinstance(info.value, OSError)
    assert _cached_files(remote["cache"]) == []


def test_a_corrupted_cached_file_is_replaced(remote):
    key = "remote_samples/remote_sample.nc"
    path = datasets.fetch(key)
    path.write_bytes(b"bit rot")
    assert datasets.fetch(key).read_bytes() == remote["files"][key]
    assert remote["server"].requests == ["/" + key, "/" + key]


def test_data_dir_environment_variable_moves_the_cache(remote, tmp_path, monkeypatch):
    other = tmp_path / "elsewhere"
    monkeypatch.setenv("XSTOCHSR_DATA_DIR", str(other))
    path = datasets.fetch("remote_sample.nc")
    assert path == other / "remote_samples/remote_sample.nc"
    assert _cached_files(remote["cache"]) == []


def test_data_url_environment_variable_points_at_a_mirror(remote, tmp_path, monkeypatch):
    mirror = _Server(tmp_path / "mirror")
    try:
        key = "weights/tiny_model.safetensors"
        mirror.put(key, remote["files"][key])
        monkeypatch.setenv("XSTOCHSR_DATA_URL", mirror.url.rstrip("/"))  # no trailing slash
        assert datasets.fetch(key).read_bytes() == remote["files"][key]
        assert mirror.requests == ["/" + key]
        assert remote["server"].requests == []
    finally:
        mirror.close()


def test_unreachable_server_gives_a_clear_error(remote, tmp_path, monkeypatch):
    dead = _Server(tmp_path / "dead")
    url = dead.url
    dead.close()  # nothing listens on that port any more
    monkeypatch.setenv("XSTOCHSR_DATA_URL", url)
    with pytest.raises(DataFetchError, match="XSTOCHSR_DATA_URL"):
        datasets.fetch("tiny_model.safetensors")
    assert _cached_files(remote["cache"]) == []


def test_missing_file_on_server_gives_a_clear_error(remote):
    (remote["server"].root / "weights/tiny_model.safetensors").unlink()
    with pytest.raises(DataFetchError, match="Could not download"):
        datasets.fetch("tiny_model.safetensors")
    assert _cached_files(remote["cache"]) == []


def test_unknown_names_list_the_known_files():
    with pytest.raises(DataFetchError, match="meteosat_rain_rate.nc"):
        datasets.fetch("no_such_file.nc")
    with pytest.raises(DataFetchError):
        datasets.open_sample("no_such_sample")
