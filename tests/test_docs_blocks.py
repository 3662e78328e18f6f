"""Every fenced Python block in README.md and docs/*.md runs (issue 15).

Blocks of one file run in order in one namespace, as a reader would paste them into a
notebook. Names the prose introduces without code ("``da``, your coarse field") are
defined by :data:`PRELUDE`, from the bundled samples. ``xstochsr.train`` runs with
small settings (a few steps on a small network) in every block; blocks marked with
``<!-- docs-test: small -->`` just before the fence say so to a reader of the source.
Skipped, with the reason: ``docs/api.md`` (generated signatures, not code to run).
"""

from __future__ import annotations

import functools
import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
MARKER = "<!-- docs-test: small"
#: Blocks that read data a script writes in minutes from raw downloads (say which in the
#: marker); they are skipped here, and the blocks before them must still run.
NEEDS_DATA = "<!-- docs-test: needs-data"
#: Files other engineers own: their long blocks run small without a marker.
UNMARKED_OK = ("docs/training.md", "docs/verification.md")
SKIP = {"docs/api.md": "generated signatures of the API reference, not code to run"}
#: Small settings for xstochsr.train in the docs (the real runs take minutes to hours).
SMALL_TRAIN = dict(steps=3, batch_size=2, patch_size=4, seq_len=3, gen_width=8,
                   gen_noise_channels=2, gen_encoder_blocks=1, gen_init_blocks=1, critic_width=8,
                   critic_dense=8, val_sequences=2, val_members=2, split_block=8,
                   checkpoint_every=1000, progress=False)

_COARSE_RAIN = """
from xstochsr import datasets as _ds
obs = _ds.open_sample("meteosat_rain_rate").rain_rate.isel(y=slice(0, 128), x=slice(0, 128))
da = obs.sr.coarsen(8)
pr = da
"""
_WIND = """
from xstochsr import datasets as _ds
da = _ds.open_sample("qg_wind_sample").eastward_wind.isel(time=slice(0, 2)).sr.coarsen(8)
"""
_PAIR = """
from xstochsr import datasets as _ds
ds = _ds.open_sample("blizzard_1996_500hpa").isel(time=slice(0, 2))
"""
_TRAIN_DATA = """
from xstochsr.training.data import synthetic_rain as _synthetic_rain
ds = _synthetic_rain(frames=24, ny=32, nx=32, seed=0)
coarse_da = ds.precip.isel(time=slice(0, 4)).sr.coarsen(8)
"""
_REGRID = _COARSE_RAIN + """
import numpy as _np, xarray as _xr
ens = da.sr.downscale(model="bilinear", factor=8, members=2, seed=0)
_x, _y = ens.x.values, ens.y.values
target = _xr.Dataset(coords={"x": ("x", _np.linspace(_x[2], _x[-3], 20), ens.x.attrs),
                             "y": ("y", _np.linspace(_y[2], _y[-3], 18), ens.y.attrs)})
for _n in ("geostationary",):
    if _n in ens.coords:
        target = target.assign_coords({_n: ens[_n]})
"""
#: Per file, or per (file, block index): code run before the block.
PRELUDE = {
    "README.md": _COARSE_RAIN + _TRAIN_DATA.replace("coarse_da = ", "_unused = "),
    "docs/baselines.md": _COARSE_RAIN,
    ("docs/models.md", 0): _PAIR,  # qg-uv-x8, qg-wind-x8, rain-x8: the cards' order
    ("docs/models.md", 1): _WIND,
    ("docs/models.md", 2): _COARSE_RAIN,
    "docs/regrid.md": _REGRID,
    "docs/training.md": _TRAIN_DATA,
}


def _blocks(rel: str) -> list[str]:
    return [m.group(1) for m in FENCE.finditer((ROOT / rel).read_text())]


def _marked(rel: str, marker: str = MARKER) -> list[bool]:
    """Per block: is it preceded by the ``marker`` line (``<!-- docs-test: small ... -->``)?"""
    text = (ROOT / rel).read_text()
    return [text[:m.start()].rstrip().splitlines()[-1:] != []
            and text[:m.start()].rstrip().splitlines()[-1].startswith(marker)
            for m in FENCE.finditer(text)]


def _files() -> list[str]:
    return ["README.md"] + sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))


@pytest.fixture
def small_train(monkeypatch):
    import xstochsr
    import xstochsr.training.loop as loop

    real = loop.train

    @functools.wraps(real)
    def _small(*args, **kw):
        small = {k: v for k, v in SMALL_TRAIN.items()
                 if not (kw.get("init") is not None and k.startswith("gen_"))}  # init's net wins
        kw = {**kw, **small}
        kw.pop("preset", None)
        return real(*args, preset="cpu", **kw)

    monkeypatch.setattr(xstochsr, "train", _small, raising=False)
    monkeypatch.setattr(loop, "train", _small)
    return _small


@pytest.mark.parametrize("rel", _files())
def test_python_blocks_run(rel, tmp_path, monkeypatch, small_train, one_thread):
    if rel in SKIP:
        pytest.skip(SKIP[rel])
    blocks = _blocks(rel)
    if not blocks:
        pytest.skip(f"{rel} has no Python blocks")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    marked = _marked(rel)
    long_runs = [i for i, code in enumerate(blocks) if "train(" in code and not marked[i]]
    assert rel in UNMARKED_OK or not long_runs, (
        f"{rel} blocks {long_runs} train without the '{MARKER} ... -->' marker line")
    needs_data = _marked(rel, NEEDS_DATA)
    ns: dict = {"__name__": "__docs__"}
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))  # docs/data.md imports scripts/splits
    for i, code in enumerate(blocks):
        if needs_data[i]:
            continue
        pre = PRELUDE.get((rel, i), PRELUDE.get(rel) if i == 0 else None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if pre:
                exec(compile(pre, f"<prelude of {rel} block {i}>", "exec"), ns)
            exec(compile(code, f"{rel} [python block {i}]", "exec"), ns)
        plt.close("all")


def test_every_markdown_file_is_covered():
    """A new docs/*.md file is picked up (or must be skipped with a reason)."""
    files = _files()
    assert "README.md" in files and "docs/training.md" in files
    assert sum(len(_blocks(f)) for f in files if f not in SKIP) >= 20


def test_list_samples_comment_in_data_md_is_current():
    from xstochsr import datasets

    text = (ROOT / "docs" / "data.md").read_text()
    m = re.search(r"datasets\.list_samples\(\)\n((?:# .*\n)+)", text)
    shown = re.findall(r"'([^']+)'", m.group(1))
    assert shown == datasets.list_samples()
