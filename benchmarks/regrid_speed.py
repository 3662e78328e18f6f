"""Conservative regridding speed: the old dense einsum against the sparse weights, same run.

Regrids a (realization, time, y, x) field from a fine lat/lon grid onto a coarser,
unaligned one (default 2 x 2 x 512 x 512 -> 100 x 90, the case of issue 15) twice:

- ``before``: the dense three-operand ``xr.dot(data, Wy, Wx)`` that
  ``conservative_rectilinear`` used until the sparse rewrite (kept here verbatim);
- ``after``: :func:`xstochsr.regrid.regrid` with ``method="conservative"`` (scipy sparse
  weights applied axis by axis);

and prints wall times, the speed-up and the largest difference between the two.

    python benchmarks/regrid_speed.py
    python benchmarks/regrid_speed.py --size 256 --target 50 45 --repeat 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import xarray as xr


def _field(n: int, lead: tuple[int, int]) -> xr.DataArray:
    rng = np.random.default_rng(0)
    lat = np.linspace(40.0, 55.0, n)
    lon = np.linspace(-5.0, 15.0, n)
    return xr.DataArray(
        rng.gamma(0.6, 2.0, (*lead, n, n)), dims=("realization", "time", "lat", "lon"),
        coords={"lat": ("lat", lat, {"units": "degrees_north"}),
                "lon": ("lon", lon, {"units": "degrees_east"})},
        name="pr", attrs={"units": "kg m-2 s-1", "standard_name": "precipitation_flux"},
    )


def _target(ny: int, nx: int) -> xr.Dataset:
    return xr.Dataset(coords={
        "lat": ("lat", np.linspace(40.3, 54.7, ny), {"units": "degrees_north"}),
        "lon": ("lon", np.linspace(-4.6, 14.4, nx), {"units": "degrees_east"})})


def dense_before(da: xr.DataArray, target: xr.Dataset) -> xr.DataArray:
    """The pre-sparse implementation: one dense einsum over both weight matrices."""
    from xstochsr.regrid._grids import describe
    from xstochsr.regrid.backends import overlap_weights

    src, tgt = describe(da), describe(target)
    wy = overlap_weights(src.yb, tgt.yb, sine=True)
    wx = overlap_weights(src.xb, tgt.xb, period=360.0)
    Wy = xr.DataArray(wy, dims=("lat", "ty"))
    Wx = xr.DataArray(wx, dims=("lon", "tx"))
    data = da.reset_coords(drop=True).drop_vars(["lat", "lon"])
    valid = data.notnull()
    num = xr.dot(data.fillna(0), Wy, Wx, dim=["lat", "lon"])
    den = xr.dot(valid.astype(np.float64), Wy, Wx, dim=["lat", "lon"])
    return num / den.where(den > 1e-12 * (Wy.sum("lat") * Wx.sum("lon")).max())


def _time(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    from xstochsr.regrid import regrid

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512, help="source cells along each axis")
    p.add_argument("--lead", type=int, nargs=2, default=(2, 2),
                   help="realization and time sizes (default: 2 2)")
    p.add_argument("--target", type=int, nargs=2, default=(100, 90), help="target ny nx")
    p.add_argument("--repeat", type=int, default=1, help="best of this many runs")
    p.add_argument("--skip-before", action="store_true", help="time only the new path")
    args = p.parse_args(argv)

    da = _field(args.size, tuple(args.lead))
    target = _target(*args.target)
    shape = "x".join(map(str, da.shape))
    print(f"conservative regrid {shape} -> {args.target[0]}x{args.target[1]} (lat/lon)")
    t_after, after = _time(lambda: regrid(da, target, method="conservative"), args.repeat)
    if args.skip_before:
        print(f"| after (sparse)  | {t_after:8.3f} s |")
        return 0
    t_before, before = _time(lambda: dense_before(da, target), args.repeat)
    ref = before.transpose("realization", "time", "ty", "tx").values
    diff = float(np.nanmax(np.abs(after.values - ref)))
    print("| implementation  | wall time  |")
    print("|-----------------|------------|")
    print(f"| before (dense)  | {t_before:8.3f} s |")
    print(f"| after (sparse)  | {t_after:8.3f} s |")
    print(f"speed-up {t_before / t_after:.1f}x; largest difference {diff:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
