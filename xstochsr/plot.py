"""Plots for verifying an ensemble (matplotlib, imported only when a plot is made).

Each function returns the matplotlib objects it drew on, for further styling.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import xarray as xr

from .errors import InvalidInputError
from .units import is_precipitation

__all__ = ["plot_rank_histogram", "plot_panel", "plot_spectra", "plot_qq"]


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _axes(ax, figsize=(6, 4)):
    plt = _plt()
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax.figure, ax


def plot_rank_histogram(rh: xr.DataArray, ax=None, *, color: str = "C0", **bar_kwargs):
    """Bar plot of a rank histogram with the uniform line and its KS in the title.

    Bars show relative frequencies; the dashed line is the ``1 / (M + 1)`` a calibrated
    ensemble reaches. Histograms with dimensions besides ``rank`` are summed first.

    Parameters
    ----------
    rh : xarray.DataArray
        Output of :func:`xstochsr.metrics.rank_histogram` (dask-backed is computed).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made if None.
    color : str, default "C0"
        Bar colour.
    **bar_kwargs
        Passed to ``ax.bar``.

    Returns
    -------
    matplotlib.axes.Axes
        The axes (``ax.figure`` is the figure).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from xstochsr.metrics import rank_histogram
    >>> rng = np.random.default_rng(0)
    >>> ens = xr.DataArray(rng.normal(size=(9, 500)), dims=("realization", "x"))
    >>> obs = xr.DataArray(rng.normal(size=500), dims="x")
    >>> ax = plot_rank_histogram(rank_histogram(ens, obs))  # doctest: +SKIP
    """
    from .metrics.rank import rank_summary

    if not isinstance(rh, xr.DataArray) or "rank" not in rh.dims:
        raise InvalidInputError(
            "plot_rank_histogram expects the DataArray returned by rank_histogram "
            "(with a 'rank' dimension)."
        )
    other = [d for d in rh.dims if d != "rank"]
    counts = (rh.sum(other) if other else rh).compute()
    total = float(counts.sum())
    if total == 0:
        raise InvalidInputError("The rank histogram is empty (no valid cases).")
    s = rank_summary(counts)
    nbins = counts.sizes["rank"]
    fig, ax = _axes(ax)
    ranks = np.arange(nbins)
    bar_kwargs.setdefault("edgecolor", "white")
    ax.bar(ranks, counts.values / total, width=1.0, color=color, **bar_kwargs)
    ax.axhline(1.0 / nbins, color="k", linestyle="--", linewidth=1, label="uniform")
    ax.set_xlim(-0.5, nbins - 0.5)
    ax.set_xlabel(f"rank of the observation among {nbins - 1} members")
    ax.set_ylabel("relative frequency")
    ax.set_title(
        f"Rank histogram: KS = {float(s['ks']):.3f}, "
        f"outliers = {float(s['outlier_proportion']):.3f}"
    )
    ax.legend(loc="upper center", frameon=False)
    return ax


def _spatial_of(da, y_dim, x_dim):
    from .metrics._inputs import _spatial

    if y_dim in da.dims and x_dim in da.dims:
        return y_dim, x_dim
    return _spatial(da)


def _to_2d(da: xr.DataArray, y, x, isel: Mapping | None, keep=()) -> tuple[xr.DataArray, str]:
    """Select down to (keep..., y, x): ``isel`` first, then index 0 of anything left."""
    if isel:
        da = da.isel({k: v for k, v in isel.items() if k in da.dims})
    picked = []
    for d in [d for d in da.dims if d not in (y, x, *keep)]:
        label = da[d].values[0] if d in da.coords else 0
        if np.issubdtype(np.asarray(label).dtype, np.datetime64):
            label = np.datetime_as_string(label, unit="m")
        picked.append(f"{d}={label}")
        da = da.isel({d: 0})
    return da.transpose(*keep, y, x).compute(), ", ".join(picked)


def plot_panel(
    coarse: xr.DataArray,
    truth: xr.DataArray,
    ens: xr.DataArray,
    members: int | Sequence[int] = 3,
    *,
    member_dim: Hashable = "realization",
    isel: Mapping[Hashable, int] | None = None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    norm=None,
    y_dim: Hashable | None = None,
    x_dim: Hashable | None = None,
    panel_size: float = 3.0,
    axes=None,
):
    """Coarse input, truth and a few members side by side, on one colour scale.

    Parameters
    ----------
    coarse : xarray.DataArray
        Coarse input field.
    truth : xarray.DataArray
        Fine truth.
    ens : xarray.DataArray
        Ensemble with dimension ``member_dim``.
    members : int or sequence of int, default 3
        Number of members to show (the first ones) or their positions.
    member_dim : str, default "realization"
        Member dimension of ``ens``.
    isel : mapping, optional
        Positions to select along other dimensions, e.g. ``{"time": 5}``; any other
        dimension left is taken at its first position (named in the figure title).
    cmap : str, default "viridis"
        Colour map.
    vmin, vmax : float, optional
        Colour limits; default the range of all panels together.
    norm : matplotlib.colors.Normalize, optional
        A norm (e.g. ``LogNorm``) instead of ``vmin``/``vmax``. Default, with neither
        given: for precipitation (a ``standard_name`` with "precipitation", "rainfall" or
        "snowfall" and no negative value), a logarithmic scale over the three decades
        below the largest value, dry cells left blank, since rain spans orders of
        magnitude; otherwise linear over the range of all panels.
    y_dim, x_dim : str, optional
        Spatial dimensions; found with :func:`xstochsr.grid.spatial_dims` if not given.
    panel_size : float, default 3.0
        Size of each panel in inches.
    axes : sequence of matplotlib.axes.Axes, optional
        ``2 + members`` axes to draw into (e.g. part of a larger figure); default: a new
        figure with one row of panels.

    Returns
    -------
    tuple
        ``(fig, axes)``: the figure and the 1-D array of axes (coarse, truth, members).

    Examples
    --------
    >>> fig, axes = plot_panel(coarse, truth, ens, members=3, isel={"time": 0})  # doctest: +SKIP
    """
    plt = _plt()
    from .metrics._inputs import _check_da, _find_member_dim

    for name, da in (("coarse", coarse), ("truth", truth), ("ens", ens)):
        _check_da(da, name)
    member_dim = _find_member_dim(ens, member_dim)
    y, x = _spatial_of(truth, y_dim, x_dim)
    cy, cx = _spatial_of(coarse, y, x)
    if isinstance(members, (int, np.integer)):
        idx = list(range(min(int(members), ens.sizes[member_dim])))
    else:
        idx = [int(i) for i in members]
    if not idx:
        raise InvalidInputError("members must select at least one member.")
    c2, picked = _to_2d(coarse, cy, cx, isel)
    t2, _ = _to_2d(truth, y, x, isel)
    e2, _ = _to_2d(ens.isel({member_dim: idx}), y, x, isel, keep=(member_dim,))
    lo = np.nanmin([np.nanmin(a.values) for a in (c2, t2, e2)])
    hi = np.nanmax([np.nanmax(a.values) for a in (c2, t2, e2)])
    if norm is None and vmin is None and vmax is None and lo >= 0 and hi > 0 \
            and is_precipitation(truth.attrs.get("standard_name")):
        from matplotlib.colors import LogNorm

        norm = LogNorm(vmin=hi * 1e-3, vmax=hi, clip=False)
    if norm is None:
        vmin = lo if vmin is None else vmin
        vmax = hi if vmax is None else vmax
        scale = {"vmin": vmin, "vmax": vmax}
    else:
        scale = {"norm": norm}
    n = 2 + len(idx)
    if axes is None:
        fig, axes = plt.subplots(
            1, n, figsize=(panel_size * n + 1, panel_size), layout="constrained", squeeze=False
        )
        axes = axes[0]
    else:
        axes = np.asarray(axes, dtype=object).ravel()
        if axes.size != n:
            raise InvalidInputError(f"axes must hold {n} axes (coarse, truth, {n - 2} members).")
        fig = axes[0].figure
    fields = [(c2, "coarse input"), (t2, "truth")]
    fields += [(e2.isel({member_dim: i}), f"member {m}") for i, m in enumerate(idx)]
    mappable = None
    for ax, (field, title) in zip(axes, fields, strict=True):
        mappable = field.plot.pcolormesh(
            ax=ax,
            x=field.dims[-1] if field.dims else None,
            cmap=cmap,
            add_colorbar=False,
            **scale,
        )
        ax.set_title(title)
        ax.set_aspect("equal", adjustable="box")
        if ax is not axes[0]:
            ax.set_ylabel("")
            ax.tick_params(labelleft=False)
    units = truth.attrs.get("units", "")
    label = truth.attrs.get("long_name", truth.name or "")
    fig.colorbar(
        mappable, ax=list(axes), shrink=0.8, label=f"{label} [{units}]" if units else label
    )
    if picked:
        fig.suptitle(picked)
    return fig, axes


def plot_spectra(
    ens: xr.DataArray,
    obs: xr.DataArray,
    *,
    member_dim: Hashable = "realization",
    ax=None,
    dim=None,
    y_dim: Hashable | None = None,
    x_dim: Hashable | None = None,
    window: str | None = None,
    max_members: int = 20,
):
    """Radially averaged power spectra of the members against the truth (log-log).

    Thin lines: up to ``max_members`` members; blue: their mean; black: the truth. The
    title gives the log spectral distance (Leinonen et al. 2021). Masked fields (NaN,
    e.g. outside a radar's range) are taken on the largest rectangle where the truth
    and every member are valid, as :func:`xstochsr.metrics.power_spectrum` explains;
    the title then says so.

    Parameters
    ----------
    ens, obs, member_dim
        As in :func:`xstochsr.metrics.log_spectral_distance`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made if None.
    dim : str or list of str, optional
        Non-spatial dimensions (other than members) to average spectra over (None: all).
    y_dim, x_dim : str, optional
        Spatial dimensions; found with :func:`xstochsr.grid.spatial_dims` if not given.
    window : {None, "hann"}, default None
        Taper, see :func:`xstochsr.metrics.power_spectrum`.
    max_members : int, default 20
        Most member spectra drawn individually (all enter the mean).

    Returns
    -------
    matplotlib.axes.Axes
        The axes (``ax.figure`` is the figure).

    Raises
    ------
    InvalidInputError
        If no field has a rectangle of at least 4 x 4 cells where the truth and every
        member are valid (nothing to estimate a spectrum on).

    Examples
    --------
    >>> ax = plot_spectra(ens, obs, dim="time")  # doctest: +SKIP
    """
    from .metrics._inputs import _prepare, _resolve_dim, _spatial, _valid
    from .metrics.spectra import _log_spectral_distance, power_spectrum

    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    y, x = _spatial(obs, y_dim, x_dim)
    keep = [d for d in obs.dims if d not in (y, x)]
    dims = _resolve_dim(dim, keep, what="obs (spatial dims excluded)")
    extra = [d for d in keep if d not in dims]
    if extra:
        raise InvalidInputError(
            f"plot_spectra draws one set of curves; dimensions {extra} would be left. "
            "Average them (dim=None) or select first, e.g. ens.isel(time=0)."
        )
    valid = _valid(ens, obs, member_dim).compute()
    masked = not bool(valid.all())
    if masked:  # the same cells for truth and members
        ens, obs = ens.where(valid), obs.where(valid)
    sp = dict(y_dim=y, x_dim=x, window=window)
    pe = power_spectrum(ens, dim=dims, **sp).transpose(member_dim, "wavenumber").compute()
    po = power_spectrum(obs, dim=dims, **sp).compute()
    lsd = float(_log_spectral_distance(ens, obs, member_dim, dims, y, x))
    if not np.isfinite(po.values).any() or not np.isfinite(lsd):
        raise InvalidInputError(
            "No field has a rectangle of at least 4 x 4 cells where the truth and every "
            f"member are valid ({int(valid.sum())} valid cases of {valid.size}), so no "
            "power spectrum can be estimated. Select a region and period with data, "
            "e.g. ens.isel(y=slice(...), x=slice(...))."
        )
    fig, ax = _axes(ax)
    k = pe["wavenumber"].values
    for i in range(min(max_members, pe.sizes[member_dim])):
        ax.loglog(
            k,
            pe.values[i],
            color="0.6",
            linewidth=0.7,
            alpha=0.7,
            label="members" if i == 0 else None,
        )
    ax.loglog(k, pe.mean(member_dim).values, color="C0", linewidth=2, label="member mean")
    ax.loglog(k, po.values, color="k", linewidth=2, label="truth")
    ax.set_xlabel(f"wavenumber [{pe['wavenumber'].attrs.get('units', '')}]")
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on short ranges
    units = obs.attrs.get("units")
    ax.set_ylabel(f"power [({units})$^2$]" if units else "power")
    where = " (largest valid rectangle)" if masked else ""
    ax.set_title(f"Power spectra{where}: LSD = {lsd:.2f} dB")
    ax.legend(frameon=False)
    return ax


#: Probabilities drawn by :func:`plot_qq` by default: the body, then the tail.
QQ_LEVELS = tuple(np.round(np.concatenate([np.arange(0.01, 1.0, 0.01), [0.995, 0.999]]), 4))


def plot_qq(
    ens: xr.DataArray,
    obs: xr.DataArray,
    *,
    member_dim: Hashable = "realization",
    ax=None,
    dim=None,
    levels: Sequence[float] = QQ_LEVELS,
    marks: Sequence[float] = (0.9, 0.99, 0.999),
    max_members: int = 20,
    log: bool | None = None,
):
    """Quantile-quantile plot of the members against the truth.

    Quantiles of each member (thin lines, up to ``max_members``) and of all members
    pooled (blue) against the truth's, on the cases where the truth and every member
    are valid; the dashed diagonal is a perfect match. Points above it: the ensemble
    is too intense at that probability. The ``marks`` quantiles are drawn as dots on the
    pooled line and their ratios ensemble / truth given in the title (as
    :func:`xstochsr.metrics.quantile_ratio`).

    Parameters
    ----------
    ens, obs, member_dim
        As in :func:`xstochsr.metrics.quantile_ratio`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made if None.
    dim : str or list of str, optional
        Dimensions to pool (None: all); any left must have size 1.
    levels : sequence of float
        Probabilities of the quantiles drawn (default 0.01..0.99, 0.995, 0.999).
    marks : sequence of float, default (0.9, 0.99, 0.999)
        Probabilities marked and reported in the title.
    max_members : int, default 20
        Most member lines drawn.
    log : bool, optional
        Logarithmic axes; default: when the truth is non-negative and its largest
        quantile is over 100 times its median (rain).

    Returns
    -------
    matplotlib.axes.Axes
        The axes (``ax.figure`` is the figure).

    Examples
    --------
    >>> ax = plot_qq(ens, obs)  # doctest: +SKIP
    """
    from .metrics._inputs import _prepare, _resolve_dim, _valid

    ens, obs, member_dim = _prepare(ens, obs, member_dim)
    dims = _resolve_dim(dim, obs.dims)
    extra = [d for d in obs.dims if d not in dims and obs.sizes[d] > 1]
    if extra:
        raise InvalidInputError(
            f"plot_qq draws one set of curves; dimensions {extra} would be left. Pool them "
            "(dim=None) or select first, e.g. ens.isel(time=0)."
        )
    q = np.unique(np.concatenate([np.asarray(levels, float), np.asarray(marks, float)]))
    if np.any((q < 0) | (q > 1)) or not np.all(np.isfinite(q)):
        raise InvalidInputError(f"levels and marks must lie in [0, 1], got {q.tolist()}.")
    valid = _valid(ens, obs, member_dim).compute().values.ravel()
    if not valid.any():
        raise InvalidInputError("No case has a finite truth and finite members: nothing to plot.")
    o = obs.compute().values.ravel()[valid]
    e = ens.transpose(member_dim, ...).compute().values.reshape(ens.sizes[member_dim], -1)
    e = e[:, valid]
    qo, qp = np.quantile(o, q), np.quantile(e, q)
    qm = np.quantile(e, q, axis=1).T  # (members, levels)
    if log is None:
        log = bool(o.min() >= 0 and qo[-1] > 100 * max(qo[np.searchsorted(q, 0.5)], 0))
    fig, ax = _axes(ax, figsize=(5, 5))
    for i in range(min(max_members, qm.shape[0])):
        ax.plot(qo, qm[i], color="0.6", linewidth=0.7, alpha=0.7,
                label="members" if i == 0 else None)
    ax.plot(qo, qp, color="C0", linewidth=2, label="members pooled")
    lo = min(qo.min(), qp.min())
    hi = max(qo.max(), qp.max())
    if log:
        lo = min(v for v in (*qo, *qp) if v > 0) if (qo > 0).any() or (qp > 0).any() else 1
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.plot([lo, hi], [lo, hi], color="k", linestyle="--", linewidth=1, label="1:1")
    ratios = []
    for p in marks:
        i = int(np.searchsorted(q, p))
        ax.plot(qo[i], qp[i], "o", color="C3", markersize=5)
        ax.annotate(f"{p:g}", (qo[i], qp[i]), textcoords="offset points", xytext=(4, -10),
                    fontsize=8)
        ratios.append(f"{p:g}: {qp[i] / qo[i]:.2f}" if qo[i] != 0 else f"{p:g}: n/a")
    units = obs.attrs.get("units")
    unit = f" [{units}]" if units else ""
    ax.set_xlabel(f"truth quantile{unit}")
    ax.set_ylabel(f"ensemble quantile{unit}")
    ax.set_title("Q-Q, ratio at " + ", ".join(ratios), fontsize=10)
    ax.legend(frameon=False, loc="upper left")
    return ax


# --- winds: vorticity and divergence panels, kinetic-energy spectra (issue 12) -------------

__all__ += ["plot_wind_panels", "plot_kinetic_energy_spectra"]


def plot_wind_panels(
    ens_u: xr.DataArray,
    ens_v: xr.DataArray,
    obs_u: xr.DataArray,
    obs_v: xr.DataArray,
    members: int | Sequence[int] = 3,
    *,
    member_dim: Hashable = "realization",
    isel: Mapping[Hashable, int] | None = None,
    cmap: str = "RdBu_r",
    panel_size: float = 3.0,
):
    """Vorticity (top row) and divergence (bottom row) of the truth and a few members.

    Each row has one colour scale, symmetric about zero (the truth's and members' 99th
    percentile of ``|value|``). Fields are computed with
    :func:`xstochsr.metrics.vorticity` and :func:`xstochsr.metrics.divergence`.

    Parameters
    ----------
    ens_u, ens_v : xarray.DataArray
        Ensemble wind components with ``member_dim``.
    obs_u, obs_v : xarray.DataArray
        The truth's components on the same grid.
    members : int or sequence of int, default 3
        How many members (the first ones), or which.
    member_dim : str, default "realization"
        Member dimension.
    isel : mapping, optional
        Selection of the other dims (e.g. ``{"time": 3}``); index 0 of any left.
    cmap : str, default "RdBu_r"
        Diverging colour map.
    panel_size : float, default 3
        Inches per panel.

    Returns
    -------
    (matplotlib.figure.Figure, numpy.ndarray of Axes)
        Axes of shape ``(2, 1 + members)``.

    Examples
    --------
    >>> fig, axes = plot_wind_panels(ens.ua, ens.va, obs.ua, obs.va)  # doctest: +SKIP
    """
    from .metrics import divergence, vorticity

    picks = list(range(members)) if isinstance(members, int) else list(members)
    if not picks:
        raise InvalidInputError("members must name at least one member, e.g. members=3.")
    n = ens_u.sizes.get(member_dim, 0)
    if max(picks) >= n:
        raise InvalidInputError(
            f"The ensemble has {n} members along {member_dim!r}; cannot draw member "
            f"{max(picks)}. Pass members=<= {n}."
        )
    eu, ev = ens_u.isel({member_dim: picks}), ens_v.isel({member_dim: picks})
    plt = _plt()
    fig, axes = plt.subplots(2, 1 + len(picks), squeeze=False, layout="constrained",
                             figsize=(panel_size * (1 + len(picks)), 2 * panel_size))
    for row, (kind, func) in enumerate((("vorticity", vorticity), ("divergence", divergence))):
        fo, fe = func(obs_u, obs_v), func(eu, ev)
        y, x = _spatial_of(fo, None, None)
        fo2, picked = _to_2d(fo, y, x, isel)
        fe2, _ = _to_2d(fe, y, x, isel, keep=(member_dim,))
        both = np.abs(np.concatenate([fo2.values.ravel(), fe2.values.ravel()]))
        lim = float(np.nanpercentile(both, 99)) if np.isfinite(both).any() else 1.0
        lim = lim or 1.0
        kw = dict(cmap=cmap, vmin=-lim, vmax=lim, add_colorbar=False)
        im = fo2.plot(ax=axes[row, 0], **kw)
        axes[row, 0].set_title(f"truth: {kind}")
        for j, m in enumerate(picks):
            fe2.isel({member_dim: j}).plot(ax=axes[row, j + 1], **kw)
            axes[row, j + 1].set_title(f"member {m}: {kind}")
        fig.colorbar(im, ax=list(axes[row]), label=f"{kind} [s$^{{-1}}$]", shrink=0.9)
    if picked:
        fig.suptitle(picked)
    return fig, axes


def plot_kinetic_energy_spectra(
    ens_u: xr.DataArray,
    ens_v: xr.DataArray,
    obs_u: xr.DataArray,
    obs_v: xr.DataArray,
    *,
    member_dim: Hashable = "realization",
    band: tuple[float, float] | None = None,
    ax=None,
    max_members: int = 20,
):
    """Kinetic-energy spectra of the members against the truth (log-log).

    Grey: up to ``max_members`` members; blue: their mean; black: the truth. The
    title gives the fitted slopes (over ``band``) and the KE log spectral distance;
    ``band`` is shaded. Other dims are averaged over.

    Parameters
    ----------
    ens_u, ens_v, obs_u, obs_v, member_dim
        As in :func:`xstochsr.metrics.kinetic_energy_lsd`.
    band : (float, float), optional
        Wavenumber band of the slopes (see :func:`xstochsr.metrics.spectral_slope`).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made if None.
    max_members : int, default 20
        Most member spectra drawn individually (all enter the mean).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> ax = plot_kinetic_energy_spectra(ens.ua, ens.va, obs.ua, obs.va)  # doctest: +SKIP
    """
    from .metrics import kinetic_energy_lsd, kinetic_energy_spectrum, spectral_slope

    keep = [d for d in ens_u.dims if d != member_dim]
    y, x = _spatial_of(obs_u, None, None)
    other = [d for d in keep if d not in (y, x)]
    ee = kinetic_energy_spectrum(ens_u, ens_v, dim=other).transpose(member_dim, "wavenumber")
    eo = kinetic_energy_spectrum(obs_u, obs_v)
    ee, eo = ee.compute(), eo.compute()
    lsd = float(kinetic_energy_lsd(ens_u, ens_v, obs_u, obs_v, member_dim=member_dim))
    se = float(spectral_slope(ee, band).mean())
    so = float(spectral_slope(eo, band))
    fig, ax = _axes(ax)
    k = ee["wavenumber"].values
    for i in range(min(max_members, ee.sizes[member_dim])):
        ax.loglog(k, ee.values[i], color="0.6", linewidth=0.7, alpha=0.7,
                  label="members" if i == 0 else None)
    ax.loglog(k, ee.mean(member_dim).values, color="C0", linewidth=2, label="member mean")
    ax.loglog(k, eo.values, color="k", linewidth=2, label="truth")
    if band is not None:
        ax.axvspan(*band, color="C1", alpha=0.1, label="slope band")
    ax.set_xlabel(f"wavenumber [{ee['wavenumber'].attrs.get('units', '')}]")
    ax.set_ylabel(f"E(k) [{eo.attrs.get('units', '')}]")
    ax.set_title(f"KE spectra: slope {se:.2f} (members) vs {so:.2f} (truth), "
                 f"LSD = {lsd:.2f} dB", fontsize="medium")
    ax.legend(frameon=False)
    return ax
