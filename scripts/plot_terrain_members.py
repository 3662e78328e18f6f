"""Members of the terrain ablation's orography generator drawn over the terrain (issue 13).

One *validation* case of the terrain-shaped rain of ``scripts/make_orographic_sequences.py``
(split ``scripts/splits/orographic.json``: only sequences whose ``subset`` is
``validation`` are read, never the test ranges): its first ``--frames`` frames are
block-averaged by 8 and downscaled with the surface altitude as static predictor
(``downscale(..., static=altitude)``), and frame ``--frame`` is drawn as the surface
altitude (with the steering wind), the true rain, the coarse input and three members,
with altitude contours on every rain panel. Each rain panel's title gives its
windward/lee contrast (mean rain where the terrain rises along the wind over mean rain
where it falls, ``make_orographic_sequences.windward_lee_contrast``), the number the
ablation in ``docs/terrain.md`` scores.

The default model is the ``orography`` arm of the ablation's second round
(``runs/terrain-gpu/orography``), an ablation checkpoint, not a shipped model. The
default case is the wettest of the first ``--sequences`` validation sequences over
the frames downscaled (``--sequence`` picks another).

    python scripts/plot_terrain_members.py           # writes docs/img/terrain_members.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ablate_terrain import DATA, subset  # noqa: E402
from make_orographic_sequences import windward_lee_contrast  # noqa: E402

MODEL = Path("runs/terrain-gpu/orography/model.safetensors")
FIGURE = Path("docs/img/terrain_members.png")
#: Rain below this (mm h-1) is drawn as dry (the constraint's dry threshold).
DRY = 0.1


def validation_case(ds: xr.Dataset, frames: int, sequence: int | None = None,
                    sequences: int = 8) -> xr.Dataset:
    """One validation sequence, its first ``frames`` frames, loaded.

    Parameters
    ----------
    ds : xarray.Dataset
        The orographic sequences (``subset``, ``rain_rate``, ``surface_altitude``...).
    frames : int
        How many frames from the start.
    sequence : int, optional
        Which validation sequence (0 is the first); None: the wettest (mean rain over
        the ``frames``) of the first ``sequences``.
    sequences : int
        How many validation sequences the wettest is chosen among.

    Returns
    -------
    xarray.Dataset
        Dims ``(time, y, x)``; the ``sequence`` coordinate keeps the file's number.
    """
    val = subset(ds, "validation")
    n = val.sizes["sequence"]
    if n == 0:
        raise ValueError("The data holds no validation sequence (subset == 'validation').")
    if sequence is None:
        rain = val["rain_rate"].isel(sequence=slice(0, sequences), time=slice(0, frames))
        sequence = int(np.argmax(rain.mean(("time", "y", "x")).values))
    if not 0 <= sequence < n:
        raise ValueError(f"--sequence {sequence}: there are {n} validation sequences "
                         f"(0 to {n - 1}).")
    return val.isel(sequence=sequence, time=slice(0, frames)).load()


def downscale_case(model, case: xr.Dataset, factor: int, members: int, seed: int
                   ) -> tuple[xr.DataArray, xr.DataArray]:
    """The coarse input (block means of the true rain) and its members, with terrain.

    Returns
    -------
    ens : xarray.DataArray ``(realization, time, y, x)``
    coarse : xarray.DataArray ``(time, y, x)``, ``factor`` times coarser
    """
    from ablate_terrain import coarse_input

    import xstochsr

    # a model that also sees the coarse steering wind (ablate_terrain.WIND) gets a Dataset
    preds = [q["name"] for q in getattr(model.card, "predictors", None) or []]
    src = coarse_input(case, preds, factor)
    ens = xstochsr.downscale(src, factor=factor, members=members, model=model,
                             seed=seed, static=case["surface_altitude"], progress=False)
    if preds:
        return ens["rain_rate"], src["rain_rate"]
    return ens, src


def contrast(rain: np.ndarray, case: xr.Dataset, frame: int) -> float:
    """Windward/lee contrast of a ``(y, x)`` rain field at ``frame`` of ``case``."""
    dx = float(abs(case["x"][1] - case["x"][0]))
    u = case["eastward_wind"].values[frame : frame + 1]
    v = case["northward_wind"].values[frame : frame + 1]
    h = case["surface_altitude"].transpose("y", "x").values
    return float(windward_lee_contrast(np.asarray(rain)[None], h, u, v, dx))


def _blocks(coarse: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The coarse field repeated over the fine cells under each coarse cell."""
    f = shape[0] // coarse.shape[0]
    return np.repeat(np.repeat(coarse, f, axis=0), f, axis=1)


def _rain_panel(ax, rain: xr.DataArray, case: xr.Dataset, norm, title: str):
    """Rain (dry cells white) with the altitude's contours, km axes."""
    wet = rain.where(rain >= DRY)
    im = ax.pcolormesh(rain["x"] / 1e3, rain["y"] / 1e3, wet.transpose("y", "x").values,
                       norm=norm, cmap="viridis", shading="nearest")
    _contours(ax, case)
    ax.set_title(title, fontsize=10)
    return im


def _contours(ax, case: xr.Dataset) -> None:
    """Contours of the surface altitude: 250, 500 or 1000 m apart (at most 8 lines)."""
    h = case["surface_altitude"].transpose("y", "x")
    top = float(h.max())
    step = next((s for s in (250.0, 500.0, 1000.0) if top / s <= 8), 2000.0)  # <= 8 lines
    levels = np.arange(step, top, step)
    if levels.size:
        ax.contour(case["x"] / 1e3, case["y"] / 1e3, h.values, levels=levels, colors="k",
                   linewidths=0.5, alpha=0.6)


def _terrain_panel(ax, case: xr.Dataset, frame: int):
    """Surface altitude with the steering wind of ``frame`` as an arrow from the centre."""
    h = case["surface_altitude"].transpose("y", "x")
    im = ax.pcolormesh(case["x"] / 1e3, case["y"] / 1e3, h.values, cmap="terrain",
                       vmin=0.0, shading="nearest")
    _contours(ax, case)
    u = float(case["eastward_wind"].values[frame])
    v = float(case["northward_wind"].values[frame])
    span = float(case["x"].max() - case["x"].min()) / 1e3
    scale = 0.25 * span / max(np.hypot(u, v), 1e-6)
    ax.annotate("", xy=(u * scale, v * scale), xytext=(0.0, 0.0),
                arrowprops=dict(arrowstyle="-|>", color="red", lw=2))
    ax.set_title(f"surface altitude; wind blows along arrow ({np.hypot(u, v):.0f} m s-1)",
                 fontsize=9)
    return im


def figure(case: xr.Dataset, ens: xr.DataArray, coarse: xr.DataArray, frame: int,
           path: Path, title: str = "") -> dict:
    """Draw terrain, truth, coarse input and three members at ``frame``; write ``path``.

    Written atomically (:func:`xstochsr.io.atomic_path`). Returns the windward/lee
    contrast of each rain panel (keys ``truth``, ``coarse``, ``member 0``...).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    from xstochsr.io import atomic_path

    truth = case["rain_rate"].isel(time=frame)
    fine = ens.isel(time=frame)
    shown = min(3, fine.sizes["realization"])
    c = coarse.isel(time=frame)
    top = float(np.nanpercentile(np.concatenate(
        [truth.values.ravel(), fine.isel(realization=slice(0, shown)).values.ravel()]), 99.5))
    norm = LogNorm(vmin=DRY, vmax=max(top, 10 * DRY))
    shape = truth.transpose("y", "x").shape
    said = {"truth": contrast(truth.transpose("y", "x").values, case, frame),
            "coarse": contrast(_blocks(c.transpose("y", "x").values, shape), case, frame)}
    fig, axes = plt.subplots(2, 3, figsize=(13.5, 8.6), constrained_layout=True)
    ti = _terrain_panel(axes[0, 0], case, frame)
    fig.colorbar(ti, ax=axes[0, 0], label="surface altitude (m)", shrink=0.85)
    im = _rain_panel(axes[0, 1], truth, case, norm,
                     f"truth (windward/lee {said['truth']:.2f})")
    _rain_panel(axes[0, 2], c, case, norm, f"coarse input, 8 x 8 means "
                                           f"(windward/lee {said['coarse']:.2f})")
    for m in range(shown):
        key = f"member {m}"
        said[key] = contrast(fine.isel(realization=m).transpose("y", "x").values, case, frame)
        _rain_panel(axes[1, m], fine.isel(realization=m), case, norm,
                    f"{key} (windward/lee {said[key]:.2f})")
    for ax in axes.ravel():
        ax.set_aspect("equal")
        ax.set_xlabel("x (km)")
        ax.set_ylabel("y (km)")
    fig.colorbar(im, ax=axes[:, 1:], label="rain rate (mm h-1), white: dry", shrink=0.6)
    if title:
        fig.suptitle(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=72)
    plt.close(fig)
    return said


def main(argv=None) -> int:
    import torch

    import xstochsr

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=MODEL)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--sequence", type=int, default=None,
                   help="validation sequence (default: the wettest of the first --sequences)")
    p.add_argument("--sequences", type=int, default=8)
    p.add_argument("--frames", type=int, default=8, help="frames downscaled from the start")
    p.add_argument("--frame", type=int, default=None, help="frame drawn (default: the last)")
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--seed", type=int, default=20261201)
    p.add_argument("--figure", type=Path, default=FIGURE)
    args = p.parse_args(argv)
    if not args.data.exists():
        p.error(f"{args.data} is missing: python scripts/make_orographic_sequences.py")
    torch.set_num_threads(1)
    model = xstochsr.load_model(args.model)
    case = validation_case(xr.open_dataset(args.data), args.frames, args.sequence,
                           args.sequences)
    frame = args.frames - 1 if args.frame is None else args.frame
    ens, coarse = downscale_case(model, case, model.card.factor, args.members, args.seed)
    name = str(case["range_name"].values)
    title = (f"{model.card.name} (ablation checkpoint, not shipped): {name}, validation "
             f"sequence {int(case['sequence'])}, frame {frame}")
    said = figure(case, ens, coarse, frame, args.figure, title)
    print(f"wrote {args.figure}: {title}")
    print("windward/lee contrast: " + ", ".join(f"{k} {v:.2f}" for k, v in said.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
