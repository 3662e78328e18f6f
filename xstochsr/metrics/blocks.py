"""Block artifacts: do the edges of the coarse cells show in a downscaled field.

Downscaling by ``factor`` splits each coarse cell into a ``factor x factor`` block. A
method that treats blocks separately (nearest-neighbour upsampling, a per-block
rescaling of the output to the coarse means) leaves steps at the block edges that the
real field does not have. :func:`block_edge_ratio` measures them.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from ..errors import InvalidInputError
from ._inputs import _check_da, _finish, _resolve_dim, _spatial

__all__ = ["block_edge_ratio"]


def _steps(da: xr.DataArray, d: Hashable, factor: int, offset: int):
    """``|x[i + 1] - x[i]|`` along ``d`` and whether each step crosses a block edge."""
    n = da.sizes[d]
    lo = da.isel({d: slice(None, -1)})
    hi = da.isel({d: slice(1, None)})
    drop = [c for c in da.coords if d in da.coords[c].dims]
    step = abs(hi.drop_vars(drop) - lo.drop_vars(drop))
    edge = xr.DataArray((np.arange(1, n) - offset) % factor == 0, dims=d)
    return step, edge


def block_edge_ratio(
    da: xr.DataArray,
    *,
    factor: int,
    dim=None,
    offset: int | tuple[int, int] = 0,
    y_dim: Hashable | None = None,
    x_dim: Hashable | None = None,
) -> xr.DataArray:
    """Mean absolute gradient across ``factor``-block edges over that inside the blocks.

    Steps between neighbouring cells, ``|x[i + 1] - x[i]|`` along both spatial axes,
    are split into those that cross the edge between two ``factor x factor`` blocks
    and those inside a block; the score is the mean of the first over the mean of the
    second, both directions and all of ``dim`` pooled. A field without block structure
    scores about 1 (the truth is the reference); a blocky field scores well above 1,
    and one that is constant inside its blocks (nearest-neighbour upsampling) scores
    ``inf``. NaN cells (masks) are left out; NaN where the field is constant.

    Parameters
    ----------
    da : xarray.DataArray
        Field(s) on the fine grid, e.g. an ensemble from :func:`xstochsr.downscale` or
        the truth (any non-spatial dimensions, members included, are pooled or kept,
        see ``dim``).
    factor : int
        Block size in fine cells (the downscaling factor), >= 2.
    dim : str or list of str, optional
        Non-spatial dimensions to pool over: None (default) for all, ``[]`` for a
        score per field.
    offset : int or (int, int), default 0
        Index of the first full block's first cell along (y, x), for a field cropped
        off the block grid; 0 for a field as downscaled.
    y_dim, x_dim : str, optional
        Spatial dimensions; found with :func:`xstochsr.grid.spatial_dims` if not given.

    Returns
    -------
    xarray.DataArray
        Named ``block_edge_ratio``, dimensionless. Lazy for dask input.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> coarse = rng.random((8, 8))
    >>> blocky = xr.DataArray(np.kron(coarse, np.ones((4, 4))) + 0.01 * rng.random((32, 32)),
    ...                       dims=("y", "x"))
    >>> float(block_edge_ratio(blocky, factor=4)) > 10
    True
    >>> noise = xr.DataArray(rng.random((64, 64)), dims=("y", "x"))
    >>> round(float(block_edge_ratio(noise, factor=4)), 1)
    1.0
    """
    da = _check_da(da, "da")
    y, x = _spatial(da, y_dim, x_dim)
    keep = [d for d in da.dims if d not in (y, x)]
    dims = _resolve_dim(dim, keep, what="the field (spatial dims excluded)")
    return _block_edge_ratio(da, y, x, dims, factor, offset)


def _block_edge_ratio(da, y, x, dims, factor, offset=0) -> xr.DataArray:
    """:func:`block_edge_ratio` with the spatial dims known; ``dims`` non-spatial."""
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 2:
        raise InvalidInputError(f"factor must be an integer >= 2, got {factor!r}.")
    factor = int(factor)
    oy, ox = (offset, offset) if np.ndim(offset) == 0 else tuple(offset)
    for d in (y, x):
        if da.sizes[d] <= factor:
            raise InvalidInputError(
                f"The field has {da.sizes[d]} cells along {d!r}: no block edge at factor "
                f"{factor}. It needs more than {factor} cells along each spatial axis."
            )
    pooled = [*dims, y, x]
    edge_sum = inner_sum = edge_n = inner_n = 0
    for d, off in ((y, oy), (x, ox)):
        step, edge = _steps(da, d, factor, int(off))
        edge_sum = edge_sum + step.where(edge).sum(pooled, skipna=True)
        edge_n = edge_n + step.where(edge).count(pooled)
        inner_sum = inner_sum + step.where(~edge).sum(pooled, skipna=True)
        inner_n = inner_n + step.where(~edge).count(pooled)
    edge_mean = edge_sum / edge_n.where(edge_n > 0)
    inner_mean = inner_sum / inner_n.where(inner_n > 0)
    ratio = edge_mean / inner_mean.where(inner_mean > 0)
    # constant inside the blocks but not across: infinitely blocky, not undefined
    out = xr.where((inner_mean == 0) & (edge_mean > 0), np.inf, ratio)
    attrs = {
        "long_name": f"mean |gradient| across {factor}x{factor} block edges / inside blocks",
        "units": "1",
        "factor": factor,
    }
    return _finish(out, "block_edge_ratio", attrs)
