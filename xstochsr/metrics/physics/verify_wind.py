"""Verification of a wind ensemble: per-component scores plus its physics."""

from __future__ import annotations

from collections.abc import Hashable

import xarray as xr

from ...errors import InvalidInputError
from .._inputs import _find_member_dim, _resolve_dim, _spatial
from ._grid import find_pair
from .energy import kinetic_energy_lsd, kinetic_energy_spectrum, spectral_slope
from .geostrophy import ageostrophic_ratio, geostrophic_wind
from .kinematics import divergence, vorticity

__all__ = ["divergence_ratio", "verify_wind"]

_GEOPOTENTIAL = ("geopotential_height", "geopotential")


def _find_z(obs: xr.Dataset):
    for n in obs.data_vars:
        if obs[n].attrs.get("standard_name") in _GEOPOTENTIAL:
            return obs[n]
    return None


def divergence_ratio(div: xr.DataArray, vort: xr.DataArray, dim) -> xr.DataArray:
    """RMS divergence over RMS vorticity over ``dim`` (NaN skipped), unit-free.

    A balance measure of one field that needs no truth and no geopotential: a
    geostrophic wind on an f-plane is non-divergent (0); on a beta-plane its divergence
    is ``-beta v / f``, small beside its vorticity; a pure source gives infinity. An
    ensemble whose members' ratio is far above the truth's adds unbalanced (divergent)
    small scales.

    Parameters
    ----------
    div, vort : xarray.DataArray
        Divergence and vorticity of the same wind (s-1, :func:`divergence`,
        :func:`vorticity`).
    dim : str or list of str
        Dimensions to take the RMS over (e.g. the spatial and time dims).
    """
    num = (div**2).mean(dim, skipna=True) ** 0.5
    den = (vort**2).mean(dim, skipna=True) ** 0.5
    return num / den


def _prefixed(ds: xr.Dataset, name: str, keep) -> xr.Dataset:
    """``ds`` with every variable and every dim not in ``keep`` prefixed by ``name_``."""
    dims = {d: f"{name}_{d}" for d in ds.dims if d not in keep}
    coords = {c: f"{name}_{c}" for c in ds.coords
              if c not in dims and any(d in dims for d in ds[c].dims)}
    ds = ds.rename_vars({v: f"{name}_{v}" for v in ds.data_vars} | coords)
    return ds.rename(dims) if dims else ds


def verify_wind(
    ens: xr.Dataset,
    obs: xr.Dataset,
    *,
    z: xr.DataArray | None = None,
    member_dim: Hashable = "realization",
    dim=None,
    band: tuple[float, float] | None = None,
    f0: float | None = None,
    beta: float = 0.0,
    components: bool = True,
    y_dim: Hashable | None = None,
    x_dim: Hashable | None = None,
    **verify_kwargs,
) -> xr.Dataset:
    """Verify a wind ensemble: each component's scores, then its physics against the truth's.

    The wind pair is found in both Datasets by CF standard_name (eastward/northward
    wind, x/y wind, sea water velocities). :func:`xstochsr.verify` on two Datasets
    calls this.

    Parameters
    ----------
    ens : xarray.Dataset
        Ensemble with both components, each with ``member_dim``.
    obs : xarray.Dataset
        The truth's components on the same grid (without ``member_dim``); may hold the
        geopotential height (or geopotential) to compute the geostrophic wind from.
    z : xarray.DataArray, optional
        Geopotential height or geopotential on the grid of ``obs``; default the variable
        of ``obs`` with that standard_name, if any. Without it, no ageostrophic ratio.
    member_dim : str, default "realization"
        Member dimension of ``ens``.
    dim : str or list of str, optional
        Non-spatial dimensions to reduce over (None: all).
    band : (float, float), optional
        Wavenumber band of the KE-spectrum slope, in the wavenumber units of
        :func:`kinetic_energy_spectrum` (None: all wavenumbers).
    f0, beta : float, optional
        Coriolis parameter of a beta-plane for projected grids (see
        :func:`geostrophic_wind`).
    components : bool, default True
        Also run :func:`xstochsr.verify` on each component; its variables (and their
        own dims, e.g. ``threshold``) get the component's name as prefix, e.g.
        ``ua_crps``, ``ua_rank_histogram`` over ``ua_rank``.
    y_dim, x_dim : str, optional
        Spatial dimensions; found with cf-xarray if not given.
    **verify_kwargs
        Passed to :func:`xstochsr.verify` for the components.

    Returns
    -------
    xarray.Dataset
        ``divergence_rmse``, ``vorticity_rmse`` (ensemble mean against truth, s-1),
        ``divergence_lsd``, ``vorticity_lsd`` (radial log spectral distance, dB),
        ``divergence_ratio_ens`` / ``_obs`` (:func:`divergence_ratio` of each member,
        averaged, and of the truth: how far each field is from a non-divergent,
        balanced flow, whatever the truth's winds are at that point),
        ``kinetic_energy_spectrum_ens`` / ``_obs`` (dim ``wavenumber``),
        ``kinetic_energy_slope_ens`` / ``_obs`` / ``_error`` (members' mean slope minus
        the truth's), ``kinetic_energy_lsd``; with a geopotential:
        ``ageostrophic_ratio_ens`` (mean over members) and ``ageostrophic_ratio_obs``;
        with ``components``: the prefixed per-component scores.
    """
    from ..continuous import rmse
    from ..spectra import log_spectral_distance
    from ..verify import verify

    for name, d in (("ens", ens), ("obs", obs)):
        if not isinstance(d, xr.Dataset):
            raise InvalidInputError(
                f"verify_wind takes Datasets holding both wind components; {name} is a "
                f"{type(d).__name__}. Build one, e.g. xr.Dataset({{'ua': u, 'va': v}}) with "
                "CF standard_names eastward_wind / northward_wind."
            )
    nu, nv = find_pair(ens)
    ou, ov = find_pair(obs)
    eu, ev, tu, tv = ens[nu], ens[nv], obs[ou], obs[ov]
    member_dim = _find_member_dim(eu, member_dim)
    y, x = _spatial(tu, y_dim, x_dim)
    keep = [d for d in tu.dims if d not in (y, x)]
    ns = _resolve_dim(dim, keep, what="obs (spatial dims excluded)")
    sp = dict(y_dim=y, x_dim=x)

    out, fields = {}, {}
    for kind, func in (("divergence", divergence), ("vorticity", vorticity)):
        fe, fo = func(eu, ev, **sp), func(tu, tv, **sp)
        fields[kind] = fe, fo
        r = rmse(fe, fo, member_dim=member_dim, dim=[*ns, y, x])
        out[f"{kind}_rmse"] = r.assign_attrs(
            long_name=f"RMSE of the ensemble-mean {kind}", units="s-1")
        out[f"{kind}_lsd"] = log_spectral_distance(
            fe, fo, member_dim=member_dim, dim=ns, radial=True, **sp
        ).assign_attrs(long_name=f"radial log spectral distance of {kind}")
    (de, do), (ze, zo) = fields["divergence"], fields["vorticity"]
    re = divergence_ratio(de, ze, dim=[*ns, y, x])
    ro = divergence_ratio(do, zo, dim=[*ns, y, x])
    out["divergence_ratio_ens"] = re.mean(member_dim).assign_attrs(
        long_name="RMS divergence over RMS vorticity, members' mean", units="1")
    out["divergence_ratio_obs"] = ro.assign_attrs(
        long_name="RMS divergence over RMS vorticity of the truth", units="1")
    ee = kinetic_energy_spectrum(eu, ev, dim=[*ns, member_dim], **sp)
    eo = kinetic_energy_spectrum(tu, tv, dim=ns, **sp)
    out["kinetic_energy_spectrum_ens"], out["kinetic_energy_spectrum_obs"] = ee, eo
    se = spectral_slope(kinetic_energy_spectrum(eu, ev, dim=ns, **sp), band)
    se = se.mean(member_dim)
    so = spectral_slope(eo, band)
    out["kinetic_energy_slope_ens"] = se.assign_attrs(long_name="KE spectrum slope, members' mean")
    out["kinetic_energy_slope_obs"] = so.assign_attrs(long_name="KE spectrum slope of the truth")
    out["kinetic_energy_slope_error"] = (se - so).assign_attrs(
        long_name="KE spectrum slope, members' mean minus truth", units="1")
    out["kinetic_energy_lsd"] = kinetic_energy_lsd(eu, ev, tu, tv, member_dim=member_dim,
                                                   dim=ns, **sp)
    z = _find_z(obs) if z is None else z
    if z is not None:
        ug, vg = geostrophic_wind(z, f0=f0, beta=beta, **sp)
        ar = dict(dim=[*ns, y, x])
        re = ageostrophic_ratio(eu, ev, ug, vg, **ar).mean(member_dim)
        out["ageostrophic_ratio_ens"] = re.assign_attrs(
            long_name="ageostrophic ratio, members' mean", units="1")
        out["ageostrophic_ratio_obs"] = ageostrophic_ratio(tu, tv, ug, vg, **ar)
    ds = xr.Dataset(out)
    if components:
        for n_e, n_o in ((nu, ou), (nv, ov)):
            r = verify(ens[n_e], obs[n_o], member_dim=member_dim, dim=dim, **sp, **verify_kwargs)
            ds = xr.merge([ds, _prefixed(r, n_e, keep)], combine_attrs="override")
    ds.attrs = {
        "title": "xstochsr wind ensemble verification",
        "wind_components": f"{nu} {nv}",
        "n_members": int(eu.sizes[member_dim]),
    }
    if band is not None:
        ds.attrs["kinetic_energy_band"] = [float(b) for b in band]
    return ds
