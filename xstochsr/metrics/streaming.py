"""Streaming accumulators: verify an ensemble chunk by chunk (``init / update / compute``).

For ensembles too large to hold at once (e.g. produced time chunk by time chunk),
feed each chunk of cases, with all its members, to ``update``; ``compute`` gives what
the one-shot function would give on the whole. In the style of pysteps'
``*_init / *_accum / *_compute`` triplets.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from ..errors import InvalidInputError
from ._inputs import _prepare, _resolve_dim
from .crps import _crps_points
from .rank import _seed_key, rank_histogram, rank_summary

__all__ = ["RankHistogramAccumulator", "CRPSAccumulator"]


def _add(total: xr.DataArray | None, part: xr.DataArray) -> xr.DataArray:
    if total is None:
        return part
    try:
        a, b = xr.align(total, part, join="exact")
    except ValueError as err:
        raise InvalidInputError(
            "This chunk's kept dimensions do not match the earlier chunks' "
            f"({err}). Chunk only along the dimensions that are reduced (dim)."
        ) from err
    return a + b


class RankHistogramAccumulator:
    """Rank histogram accumulated over chunks of cases.

    Parameters
    ----------
    member_dim, dim, threshold, threshold_on
        As in :func:`xstochsr.metrics.rank_histogram`. Dimensions not in ``dim`` must
        be identical in every chunk.
    seed : int, numpy.random.Generator or None, default 0
        Seed of the tie-breaking; each update draws from its own stream derived from it.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> ens = xr.DataArray(rng.random((9, 6, 4)), dims=("realization", "time", "x"))
    >>> obs = xr.DataArray(rng.random((6, 4)), dims=("time", "x"))
    >>> acc = RankHistogramAccumulator()
    >>> for t in range(0, 6, 2):
    ...     acc.update(ens.isel(time=slice(t, t + 2)), obs.isel(time=slice(t, t + 2)))
    >>> int(acc.compute().sum())
    24
    """

    def __init__(
        self,
        *,
        member_dim: Hashable = "realization",
        dim=None,
        seed=0,
        threshold: float | None = None,
        threshold_on: str = "any",
    ) -> None:
        self.member_dim = member_dim
        self.dim = dim
        self.threshold = threshold
        self.threshold_on = threshold_on
        self._key = _seed_key(seed)
        self._counts: xr.DataArray | None = None
        self.n_updates = 0

    def update(self, ens: xr.DataArray, obs: xr.DataArray) -> None:
        """Add one chunk of cases (computed now, also for dask input)."""
        seed = np.random.SeedSequence([self._key % 2**63, self.n_updates])
        part = rank_histogram(
            ens,
            obs,
            member_dim=self.member_dim,
            dim=self.dim,
            seed=int(seed.generate_state(1, np.uint64)[0]),
            threshold=self.threshold,
            threshold_on=self.threshold_on,
        ).compute()
        if self._counts is not None and part.sizes["rank"] != self._counts.sizes["rank"]:
            raise InvalidInputError(
                f"This chunk has {part.sizes['rank'] - 1} members, earlier ones "
                f"{self._counts.sizes['rank'] - 1}; every chunk needs all members."
            )
        attrs = {k: v for k, v in part.attrs.items() if k in ("long_name", "units", "n_members")}
        self._counts = _add(self._counts, part)
        self._counts.attrs = attrs
        self.n_updates += 1

    def compute(self) -> xr.DataArray:
        """Return the rank histogram so far, summaries in attrs (as rank_histogram)."""
        if self._counts is None:
            raise InvalidInputError("No data yet: call update(ens, obs) first.")
        rh = self._counts.copy()
        pooled = rh.sum([d for d in rh.dims if d != "rank"]) if rh.ndim > 1 else rh
        s = rank_summary(pooled)
        rh.attrs.update(
            ks=float(s["ks"]),
            kl=float(s["kl"]),
            outlier_proportion=float(s["outlier_proportion"]),
            n_cases=int(pooled.sum()),
        )
        return rh


class CRPSAccumulator:
    """Mean CRPS accumulated over chunks of cases.

    Keeps, per kept point, the sum of the CRPS over valid cases and their count.

    Parameters
    ----------
    member_dim, dim, fair
        As in :func:`xstochsr.metrics.crps`. Dimensions not in ``dim`` must be
        identical in every chunk.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from xstochsr.metrics import crps
    >>> rng = np.random.default_rng(0)
    >>> ens = xr.DataArray(rng.random((9, 6, 4)), dims=("realization", "time", "x"))
    >>> obs = xr.DataArray(rng.random((6, 4)), dims=("time", "x"))
    >>> acc = CRPSAccumulator()
    >>> for t in range(0, 6, 2):
    ...     acc.update(ens.isel(time=slice(t, t + 2)), obs.isel(time=slice(t, t + 2)))
    >>> bool(np.isclose(acc.compute(), crps(ens, obs)))
    True
    """

    def __init__(
        self, *, member_dim: Hashable = "realization", dim=None, fair: bool = False
    ) -> None:
        self.member_dim = member_dim
        self.dim = dim
        self.fair = fair
        self._sum: xr.DataArray | None = None
        self._count: xr.DataArray | None = None
        self._attrs: dict = {}
        self.n_updates = 0

    def update(self, ens: xr.DataArray, obs: xr.DataArray) -> None:
        """Add one chunk of cases (computed now, also for dask input)."""
        ens, obs, member_dim = _prepare(ens, obs, self.member_dim)
        dims = _resolve_dim(self.dim, obs.dims)
        points = _crps_points(ens, obs, member_dim, self.fair)
        s = points.sum(dims, skipna=True) if dims else points.fillna(0.0)
        n = points.notnull().sum(dims) if dims else points.notnull().astype(int)
        both = xr.Dataset({"s": s, "n": n}).compute()
        s, n = both["s"], both["n"]
        self._sum = _add(self._sum, s)
        self._count = _add(self._count, n)
        self._attrs = {"long_name": "fair ensemble CRPS" if self.fair else "ensemble CRPS"}
        if "units" in obs.attrs:
            self._attrs["units"] = obs.attrs["units"]
        self.n_updates += 1

    def compute(self) -> xr.DataArray:
        """Mean CRPS so far over the reduced dimensions (NaN where no valid case)."""
        if self._sum is None:
            raise InvalidInputError("No data yet: call update(ens, obs) first.")
        out = self._sum / self._count.where(self._count > 0)
        out = out.rename("crps_fair" if self.fair else "crps")
        out.attrs = dict(self._attrs)
        return out
