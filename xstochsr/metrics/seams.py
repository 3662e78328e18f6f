"""Seam score: whether the borders between the tiles of a tiled run show in the field.

:func:`xstochsr.downscale` runs a large domain in overlapping tiles
(:mod:`xstochsr.tiling`). A tiling done badly (no halo, no blending) leaves steps along
the lines where tiles meet. :func:`seam_score` compares the gradient across those lines
with the gradient everywhere else: about 1 for no seam.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from ..errors import InvalidInputError
from ._inputs import _check_da, _finish, _resolve_dim, _spatial

__all__ = ["seam_score"]


def _border_mask(n: int, borders: Sequence[int], width: int, d: Hashable) -> xr.DataArray:
    """Select steps ``j`` (cells j to j+1) within ``width`` of a border: ``|j + 1 - b| < width``."""
    j1 = np.arange(1, n)
    near = np.zeros(n - 1, dtype=bool)
    for b in borders:
        near |= np.abs(j1 - int(b)) < width
    return xr.DataArray(near, dims=d)


def _checked_borders(borders, n: int, d: Hashable) -> list[int]:
    out = []
    for b in borders:
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 0 < b < n:
            raise InvalidInputError(
                f"Each border along {d!r} must be a fine-cell index from 1 to {n - 1} (the "
                f"first cell after the border), got {b!r}. Use "
                "xstochsr.tiling.tile_borders(shape, tile, factor) for a tiled run."
            )
        out.append(int(b))
    return out


def seam_score(
    da: xr.DataArray,
    *,
    borders: tuple[Sequence[int], Sequence[int]],
    width: int = 1,
    factor: int | None = None,
    dim=None,
    y_dim: Hashable | None = None,
    x_dim: Hashable | None = None,
) -> xr.DataArray:
    """Mean absolute gradient across tile borders over that everywhere else.

    Steps between neighbouring cells, ``|x[i + 1] - x[i]|``, along y and x are split into
    those within ``width`` cells of a tile border (y steps at y borders, x steps at x
    borders) and all others; the score is the mean of the first over the mean of the
    second, both directions and all of ``dim`` pooled. 1 means the borders look like the
    rest of the field; a seam scores above 1. NaN cells (masks) are left out.

    Tile borders lie on coarse-block edges, where a downscaled field's gradients can differ
    from those inside a block; with ``factor`` the comparison is made position for
    position within the block: the steps elsewhere are averaged per position ``(i + 1) %
    factor`` and weighted as the border steps are, so block structure is not a seam.

    Parameters
    ----------
    da : xarray.DataArray
        Field(s) on the fine grid, e.g. an ensemble from a tiled
        :func:`xstochsr.downscale` run.
    borders : (sequence of int, sequence of int)
        Fine-cell indices along (y, x) of the first cell after each tile border, e.g.
        from :func:`xstochsr.tiling.tile_borders`.
    width : int, default 1
        Steps whose far cell lies less than ``width`` cells from a border count as
        across it (1: only the step across the border itself; ``factor`` to include a
        blending ramp's neighbourhood).
    factor : int, optional
        The downscaling factor: compare with steps at the same positions within the
        coarse blocks (recommended for downscaled fields; None compares with all steps).
    dim : str or list of str, optional
        Non-spatial dimensions to pool over: None (default) for all, ``[]`` for a score
        per field.
    y_dim, x_dim : str, optional
        Spatial dimensions; found with :func:`xstochsr.grid.spatial_dims` if not given.

    Returns
    -------
    xarray.DataArray
        Named ``seam_score``, dimensionless. Lazy for dask input.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> field = xr.DataArray(rng.random((64, 64)), dims=("y", "x"))
    >>> round(float(seam_score(field, borders=([32], [32]))), 1)
    1.0
    >>> field[32:] += 3.0  # a step along y = 32
    >>> float(seam_score(field, borders=([32], [32]))) > 3
    True
    """
    da = _check_da(da, "da")
    y, x = _spatial(da, y_dim, x_dim)
    keep = [d for d in da.dims if d not in (y, x)]
    dims = _resolve_dim(dim, keep, what="the field (spatial dims excluded)")
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise InvalidInputError(f"width must be an integer >= 1, got {width!r}.")
    if len(borders) != 2:
        raise InvalidInputError(
            f"borders must be a pair (y borders, x borders), got {borders!r}.")
    period = 1
    if factor is not None:
        if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
            raise InvalidInputError(f"factor must be an integer >= 1 or None, got {factor!r}.")
        period = int(factor)
    pooled = [*dims, y, x]
    seam_sum = seam_n = 0
    rest_sum = [0] * period
    rest_n = [0] * period
    phase_n = [0] * period  # border steps per position in the block
    for d, bs in zip((y, x), borders, strict=True):
        n = da.sizes[d]
        if n < 2:
            continue
        near = _border_mask(n, _checked_borders(bs, n, d), int(width), d)
        drop = [c for c in da.coords if d in da.coords[c].dims]
        step = abs(da.isel({d: slice(1, None)}).drop_vars(drop)
                   - da.isel({d: slice(None, -1)}).drop_vars(drop))
        seam_sum = seam_sum + step.where(near).sum(pooled, skipna=True)
        seam_n = seam_n + step.where(near).count(pooled)
        phase = xr.DataArray(np.arange(1, n) % period, dims=d)
        for p in range(period):
            at = phase == p
            phase_n[p] = phase_n[p] + step.where(near & at).count(pooled)
            rest_sum[p] = rest_sum[p] + step.where(~near & at).sum(pooled, skipna=True)
            rest_n[p] = rest_n[p] + step.where(~near & at).count(pooled)
    if not any(len(b) for b in borders):
        raise InvalidInputError("borders holds no border: pass at least one y or x border.")
    seam_mean = seam_sum / seam_n.where(seam_n > 0)
    rest_mean = sum(phase_n[p] * (rest_sum[p] / rest_n[p].where(rest_n[p] > 0))
                    for p in range(period)) / seam_n.where(seam_n > 0)
    out = seam_mean / rest_mean.where(rest_mean > 0)
    attrs = {"long_name": "mean |gradient| across tile borders / elsewhere", "units": "1",
             "width": int(width)}
    return _finish(out, "seam_score", attrs)
