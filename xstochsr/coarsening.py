"""Block averaging that says what it does at the edges (``da.sr.coarsen``).

:func:`xstochsr.grid.coarsen_field` trims rows and columns that do not fill a block;
a 140 x 210 field coarsened by 8 silently becomes 17 x 26 coarse cells (136 x 208 fine).
:func:`coarsen` warns when it trims, and ``boundary="exact"`` refuses instead.
"""

from __future__ import annotations

import warnings

import xarray as xr

from .errors import InvalidInputError

__all__ = ["TrimWarning", "coarsen"]


class TrimWarning(UserWarning):
    """Block averaging dropped rows or columns that did not fill a block."""


def coarsen(da: xr.DataArray, factor: int, *, boundary: str = "trim") -> xr.DataArray:
    """Block-average ``da`` by ``factor`` along X and Y (see :func:`xstochsr.grid.coarsen_field`).

    Parameters
    ----------
    da : xarray.DataArray
        Fine field ``(..., Y, X)``.
    factor : int
        Block size.
    boundary : {"trim", "exact"}, default "trim"
        ``"trim"`` drops the trailing rows/columns that do not fill a block and warns
        (:class:`TrimWarning`) with the sizes; ``"exact"`` raises instead.

    Returns
    -------
    xarray.DataArray
        ``(..., Y // factor, X // factor)``.
    """
    from .grid import coarsen_field, find_axes

    if boundary not in ("trim", "exact"):
        raise InvalidInputError(f"boundary must be 'trim' or 'exact', got {boundary!r}.")
    axes = find_axes(da)
    ny, nx = da.sizes[axes.y], da.sizes[axes.x]
    ry, rx = ny % factor, nx % factor
    if ry or rx:
        what = (f"{ny}x{nx} is not a multiple of {factor}: the last {ry} row(s) and {rx} "
                f"column(s) do not fill a block")
        if boundary == "exact":
            raise InvalidInputError(
                f"{what}. Crop first, e.g. da.isel({axes.y}=slice(0, {ny - ry}), "
                f"{axes.x}=slice(0, {nx - rx})), or pass boundary='trim'."
            )
        warnings.warn(f"{what}; they were dropped, giving {ny // factor}x{nx // factor} coarse "
                      f"cells ({ny - ry}x{nx - rx} fine). Pass boundary='exact' to refuse.",
                      TrimWarning, stacklevel=3)
    return coarsen_field(da, factor, axes=axes)
