"""Physics diagnostics of winds on CF grids: kinematics, geostrophy, kinetic energy.

Everything is xarray in, xarray out. Projected grids (x/y in a length unit) and 1-D
latitude/longitude grids (spherical metric terms, ``R = 6.371e6 m``) are supported;
components are recognised by CF standard_name pairs (eastward/northward wind, x/y wind,
sea water velocities). See ``docs/physics.md``.
"""

from .energy import kinetic_energy_lsd, kinetic_energy_spectrum, spectral_slope
from .geostrophy import (
    GeostrophyWarning,
    ageostrophic_ratio,
    geostrophic_wind,
    thermal_wind_residual,
)
from .kinematics import divergence, vorticity
from .verify_wind import divergence_ratio, verify_wind

__all__ = [
    "divergence",
    "vorticity",
    "geostrophic_wind",
    "ageostrophic_ratio",
    "thermal_wind_residual",
    "GeostrophyWarning",
    "kinetic_energy_spectrum",
    "spectral_slope",
    "kinetic_energy_lsd",
    "divergence_ratio",
    "verify_wind",
]
