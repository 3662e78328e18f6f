"""Hard conservation layers: fine block means equal the coarse input by construction.

Constraint layers after Harder et al. (2023, "Hard-constrained deep learning for climate
downscaling", JMLR 24:365): the last layer of the generator maps the network's raw fine
output so that every ``factor x factor`` block mean, in *physical units*, equals the
coarse value it came from, for any weights. The raw network is then unbiased at the
coarse scale and learns only how to distribute each coarse value inside its block.

``"multiplicative"`` (softmax constraint layer, for precipitation)
    ``y = x * f^2 * softmax_block(z)``: non-negative wherever ``x >= 0``, exactly zero
    in blocks whose coarse value is zero (dry stays dry), block mean ``x``. With
    ``prior="bilinear"`` the logits are ``z + log(b)``, ``b`` a bilinear interpolation
    of the coarse field refined towards its block means (:func:`log_prior`): ``z = 0``
    gives that smooth field rescaled to the block means, so the network learns structure
    *on top of* a field without block edges instead of having to learn that edges
    between blocks of different value must be smooth. With ``dry=t`` (physical units, e.g.
    0.1 mm h-1), cells below ``t`` are set to exactly zero and the block's other cells
    rescaled to keep its mean (blocks whose every cell is below ``t`` are left as they
    are): a softmax is positive everywhere, so without it no pixel inside a wet block is
    ever dry, and a truth with dry pixels there lies below every member.
    ``prior="smooth"`` keeps the bilinear prior but drops the softmax's per-block
    normalisation, which draws a step on a block edge wherever two neighbouring blocks'
    sums of ``exp(z)`` are not in the ratio of their coarse values: the weights
    ``exp(z + log b)`` are multiplied by a smooth positive field fitted so that the
    block means come out right (:func:`smooth_rescale`; it falls to zero inside a wet
    block towards a dry neighbour, as rain does at the edge of a rain area), and only
    the small remainder of that fit is closed block by block. Smooth logits then give a
    smooth field; dry stays dry and the block means stay exact.
``"additive"`` (for signed fields: temperature, winds)
    ``y = u - mean_block(u) + x`` with ``u`` the network output in physical units: the
    correction ``x - mean_block(u)`` is constant in each block, so any error of the raw
    block means comes out as a step on every block edge. With ``prior="bilinear"`` the
    correction is spread instead by :func:`smooth_spread`, a bilinear interpolation whose
    block means equal the correction exactly: ``y = u + smooth_spread(x - mean_block(u))``
    has the same block means and no steps that ``u`` lacks.

Shapes: N frames, C channels, H x W coarse cells, f = factor; the raw output ``z`` and
the result are ``(N, C, f*H, f*W)``, the coarse input ``x`` is ``(N, C, H, W)``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["CONSTRAINTS", "PRIORS", "PRIORS_OF", "block_mean", "multiplicative", "additive",
           "apply_constraint", "log_prior", "dry_out", "smooth_spread", "smooth_rescale",
           "smooth_weights"]

#: Constraint kinds a generator may carry (``GeneratorConfig.constraint``).
CONSTRAINTS = ("multiplicative", "additive")
#: Priors each constraint accepts (``GeneratorConfig.constraint_prior``): for the
#: multiplicative layer the logits' starting point ("smooth" also drops the per-block
#: normalisation), for the additive one how the correction is spread over each block
#: ("bilinear" spreading is already smooth).
PRIORS_OF = {"multiplicative": ("bilinear", "smooth"), "additive": ("bilinear",)}
#: Every prior some constraint accepts.
PRIORS = tuple(dict.fromkeys(p for ps in PRIORS_OF.values() for p in ps))
#: Floor of the bilinear prior, relative to the block's own coarse value.
PRIOR_FLOOR = 1e-3
#: Richardson-Lucy refinements of the prior (its block means approach the coarse field).
PRIOR_ITERATIONS = 8
#: Jacobi sweeps per axis of :func:`smooth_spread` (error shrinks 3x per sweep).
SPREAD_SWEEPS = 12
#: Multiplicative refinements of :func:`smooth_rescale`'s smooth field.
RESCALE_ITERATIONS = 8
#: Bound of the weights' log contrast to their local (smoothed) block maximum in
#: :func:`multiplicative` with ``prior="smooth"``: ``exp(+-15)`` keeps every product of
#: :func:`smooth_rescale` in float32 range for coarse values up to about 1e20 (a cell
#: 15 nats below its neighbourhood's largest carries under 1e-6 of the rain anyway).
LOG_CONTRAST = 15.0
#: How steeply :func:`smooth_rescale`'s field falls inside a wet block towards a dry
#: neighbour (its dry node is minus this times the largest wet neighbour's). On the
#: first 8 frames of 8 validation sequences at zero logits (``ablate_objective.py
#: layer-check``): block-edge ratio 2.6, 1.76, 1.53, 1.45 for 0, 1, 2, 3 (truth 0.97),
#: with 0, 8, 32, 67 of 17273 wet blocks left empty by the taper (they take ``w``).
DRY_TAPER = 2.0


def _blocks(z: torch.Tensor, f: int) -> torch.Tensor:
    n, c, fh, fw = z.shape
    return z.reshape(n, c, fh // f, f, fw // f, f)


def _unblocks(b: torch.Tensor) -> torch.Tensor:
    n, c, h, f, w, _ = b.shape
    return b.reshape(n, c, h * f, w * f)


def _flat(z: torch.Tensor, f: int) -> torch.Tensor:
    """``(N, C, f*H, f*W) -> (N, C, H, W, f*f)``: one block's cells per row."""
    b = _blocks(z, f)
    n, c, h, _, w, _ = b.shape
    return b.permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w, f * f)


def _unflat(y: torch.Tensor, f: int) -> torch.Tensor:
    """Inverse of :func:`_flat`."""
    n, c, h, w, _ = y.shape
    return _unblocks(y.reshape(n, c, h, w, f, f).permute(0, 1, 2, 4, 3, 5))


def block_mean(y: torch.Tensor, factor: int) -> torch.Tensor:
    """Mean over each ``factor x factor`` block: ``(N, C, fH, fW) -> (N, C, H, W)``."""
    return F.avg_pool2d(y, factor)


def log_prior(coarse: torch.Tensor, factor: int,
              iterations: int = PRIOR_ITERATIONS) -> torch.Tensor:
    """Log of a smooth, non-negative interpolation of ``coarse``, floored within each block.

    ``(N, C, H, W) -> (N, C, f*H, f*W)``. The interpolation is ``b = bilinear(r)`` with
    ``r`` refined from ``coarse`` by ``iterations`` multiplicative (Richardson-Lucy)
    steps ``r <- r * x / block_mean(bilinear(r))`` (zero where ``x`` is), so that ``b``'s
    block means approach ``x`` and the constraint's final per-block rescaling, which is
    what draws block edges, stays small. The result is ``log(max(b, 1e-3 * x_block,
    1e-30))`` with ``x_block`` the block's own value: a wet block beside dry ones leans its
    rain towards its wet side but keeps some everywhere, a dry block gets finite
    (irrelevant) logits, and the floor is relative, so the prior does not depend on the
    field's units.
    """
    f = int(factor)
    x = coarse.float().clamp_min(0.0)
    r = x
    for _ in range(int(iterations)):
        m = block_mean(F.interpolate(r, scale_factor=f, mode="bilinear", align_corners=False), f)
        r = torch.where(x > 0, r * x / m.clamp_min(1e-30), torch.zeros_like(r))
    b = F.interpolate(r, scale_factor=f, mode="bilinear", align_corners=False)
    own = F.interpolate(x, scale_factor=f, mode="nearest")
    return torch.log(torch.maximum(b, PRIOR_FLOOR * own).clamp_min(1e-30))


def multiplicative(z: torch.Tensor, coarse: torch.Tensor, factor: int,
                   prior: str | None = None, dry: float | None = None) -> torch.Tensor:
    """Softmax constraint layer: ``coarse * f^2 * softmax`` of ``z`` within each block.

    Parameters
    ----------
    z : Tensor ``(N, C, f*H, f*W)``
        Raw network output (logits; any real values).
    coarse : Tensor ``(N, C, H, W)``
        Coarse values in physical units (non-negative for a non-negative result).
    factor : int
    prior : {"bilinear", "smooth"} or None
        ``"bilinear"``: add :func:`log_prior` to the logits. ``"smooth"``: the same, and
        the block means are met by a smooth positive field (:func:`smooth_rescale`)
        instead of the softmax's per-block normalisation (see the module docstring).
    dry : float, optional
        Dry threshold in the units of ``coarse``: see :func:`dry_out`.

    Returns
    -------
    Tensor ``(N, C, f*H, f*W)``, float32, block means equal ``coarse``.
    """
    f = int(factor)
    z = z.float()
    if prior == "smooth":
        y = smooth_rescale(smooth_weights(z, coarse, f), coarse, f)
        return y if dry is None else _unflat(dry_out(_flat(y, f), float(dry)), f)
    if prior == "bilinear":
        z = z + log_prior(coarse, f)
    elif prior is not None:
        raise ValueError(f"Unknown constraint prior {prior!r}; use one of {PRIORS} or None.")
    weights = torch.softmax(_flat(z, f), dim=-1) * (f * f)
    y = weights * coarse.float().unsqueeze(-1)
    if dry is not None:
        y = dry_out(y, float(dry))
    return _unflat(y, f)


def smooth_weights(z: torch.Tensor, coarse: torch.Tensor, factor: int) -> torch.Tensor:
    """Positive weights ``exp(z + log_prior)`` of the smooth layer, scaled for float32.

    ``(N, C, f*H, f*W)``. Taken relative to a smooth local maximum (the bilinear
    interpolation of each block's largest logit; a per-block one would draw steps) and
    bounded to ``exp(+-LOG_CONTRAST)`` of it.
    """
    f = int(factor)
    z = z.float() + log_prior(coarse, f)
    top = F.interpolate(F.max_pool2d(z, f), scale_factor=f, mode="bilinear",
                        align_corners=False)
    return torch.exp((z - top).clamp(-LOG_CONTRAST, LOG_CONTRAST))


def smooth_rescale(w: torch.Tensor, coarse: torch.Tensor, factor: int,
                   iterations: int = RESCALE_ITERATIONS, taper: float = DRY_TAPER) -> torch.Tensor:
    """Multiply positive weights by a smooth field so that the block means equal ``coarse``.

    The field is ``max(bilinear(r), 0)`` with ``r`` on the coarse grid: ``r >= 0`` in wet
    blocks, refined by ``iterations`` multiplicative steps ``r <- r * x / block_mean(w *
    field)`` from ``r = x / block_mean(w)``; in a dry block (coarse value ``x = 0``) ``r``
    is ``-taper`` times the largest ``r`` of its wet neighbours, so the field falls to zero
    inside a wet block's edge towards a dry one, as rain does at the edge of a rain area,
    instead of stepping down on the block edge. What the steps leave is closed by one
    exact rescaling per block; a wet block whose field the taper leaves empty (rare: a
    light block between heavy ones and a dry one) takes ``w`` alone. The result is
    non-negative, zero in every dry block, has block means equal to ``coarse`` to
    rounding, and is as smooth across block edges as ``w`` is, up to that last rescaling
    (which the steps make small). Differentiable in ``w``.

    Parameters
    ----------
    w : Tensor ``(N, C, f*H, f*W)``
        Positive weights (finite).
    coarse : Tensor ``(N, C, H, W)``
        Non-negative coarse values.
    factor : int
    iterations : int
    taper : float
        How steeply the field falls towards a dry neighbour (0: it steps down on the
        edge); :data:`DRY_TAPER` was chosen with ``scripts/ablate_objective.py
        layer-check`` on validation frames.

    Returns
    -------
    Tensor ``(N, C, f*H, f*W)``, float32.
    """
    f = int(factor)
    x = coarse.float().clamp_min(0.0)
    w = w.float()
    wet = x > 0
    zero = torch.zeros_like(x)

    def ratio(m):
        return torch.where(wet, x / m.clamp_min(1e-30), zero)

    def field(r):
        near = F.max_pool2d(torch.where(wet, r, zero), 3, stride=1, padding=1)
        nodes = torch.where(wet, r, -float(taper) * near)
        return F.interpolate(nodes, scale_factor=f, mode="bilinear",
                             align_corners=False).clamp_min(0.0)

    r = ratio(block_mean(w, f))
    for _ in range(int(iterations)):
        m = block_mean(w * field(r), f)  # 0 in a wet block only where the taper empties it
        r = torch.where(m > 0, r * ratio(m), r)
    v = w * field(r)
    empty = wet & (block_mean(v, f) <= 0)
    v = torch.where(F.interpolate(empty.float(), scale_factor=f, mode="nearest") > 0, w, v)
    return v * F.interpolate(ratio(block_mean(v, f)), scale_factor=f, mode="nearest")


def dry_out(y: torch.Tensor, threshold: float) -> torch.Tensor:
    """Zero the cells of each block below ``threshold``; rescale the rest to keep its sum.

    ``y`` is ``(..., f*f)``, one block per row, non-negative. A block whose every cell is
    below ``threshold`` is returned unchanged (its mean is kept; drizzle stays drizzle).
    The mask carries no gradient; the kept cells do, through the rescaling.
    """
    keep = y >= threshold
    total = y.sum(dim=-1, keepdim=True)
    kept = (y * keep).sum(dim=-1, keepdim=True)
    some = kept > 0
    scale = torch.where(some, total / torch.where(some, kept, torch.ones_like(kept)),
                        torch.ones_like(kept))
    return torch.where(some, y * keep * scale, y)


def _mean_of_linear(r: torch.Tensor) -> torch.Tensor:
    """Block means of the linear interpolation of ``r`` along its last axis.

    Upsampling by any even factor with ``align_corners=False`` and averaging each
    block back is the tridiagonal operator ``(1/8, 3/4, 1/8)``; at the two ends the
    interpolation is clamped, so the end rows are ``(7/8, 1/8)``. ``r`` is ``(..., n)``.
    """
    pad = torch.cat([r[..., :1], r, r[..., -1:]], dim=-1)
    return 0.75 * r + 0.125 * (pad[..., :-2] + pad[..., 2:])


def _unmean_of_linear(x: torch.Tensor, sweeps: int) -> torch.Tensor:
    """Solve ``_mean_of_linear(r) = x`` along the last axis by Jacobi sweeps.

    The operator is diagonally dominant (off-diagonal sum 1/4 against 3/4 inside,
    1/8 against 7/8 at the ends), so each sweep shrinks the error at least 3x.
    """
    d = torch.full(x.shape[-1:], 0.75, dtype=x.dtype, device=x.device)
    d[0] = d[-1] = 0.875
    if x.shape[-1] == 1:
        d[0] = 1.0
    r = x / d
    for _ in range(int(sweeps)):
        r = r + (x - _mean_of_linear(r)) / d
    return r


def smooth_spread(x: torch.Tensor, factor: int, sweeps: int = SPREAD_SWEEPS) -> torch.Tensor:
    """Spread ``x`` into a smooth fine field whose ``factor x factor`` block means are ``x``.

    ``(N, C, H, W) -> (N, C, f*H, f*W)``, ``f`` even (every supported factor is). The
    field is ``bilinear(r)`` with ``r`` solving ``block_mean(bilinear(r)) = x``; the
    operator is a separable tridiagonal one (:func:`_mean_of_linear`), solved per axis
    by ``sweeps`` Jacobi sweeps, and what the sweeps leave (below ``3**-sweeps`` of
    ``x``'s range) is added block by block, so the block means are exact to rounding
    while the field is continuous up to that remainder. Linear in ``x``, so gradients
    flow through it.
    """
    f = int(factor)
    x = x.float()
    r = _unmean_of_linear(x, sweeps)
    r = _unmean_of_linear(r.transpose(-1, -2), sweeps).transpose(-1, -2)
    b = F.interpolate(r, scale_factor=f, mode="bilinear", align_corners=False)
    return b + F.interpolate(x - block_mean(b, f), scale_factor=f, mode="nearest")


def additive(u: torch.Tensor, coarse: torch.Tensor, factor: int,
             prior: str | None = None) -> torch.Tensor:
    """Additive constraint layer: ``u - block_mean(u) + coarse`` (physical units).

    Parameters
    ----------
    u : Tensor ``(N, C, f*H, f*W)``
        Network output already in physical units.
    coarse : Tensor ``(N, C, H, W)``
    factor : int
    prior : {"bilinear"} or None
        How the correction ``coarse - block_mean(u)`` is added: None, as a constant
        per block (a step on every block edge where the raw means are off);
        ``"bilinear"``, spread smoothly by :func:`smooth_spread`.

    Returns
    -------
    Tensor ``(N, C, f*H, f*W)``, float32, block means equal ``coarse``.
    """
    f = int(factor)
    u = u.float()
    shift = coarse.float() - block_mean(u, f)
    if prior not in (None, *PRIORS_OF["additive"]):
        raise ValueError(f"Unknown prior {prior!r} of the additive constraint; use one of "
                         f"{PRIORS_OF['additive']} or None.")
    if prior == "bilinear":
        return u + smooth_spread(shift, f)
    if prior is not None:
        raise ValueError(f"Unknown constraint prior {prior!r}; use one of {PRIORS} or None.")
    return u + F.interpolate(shift, scale_factor=f, mode="nearest")


def apply_constraint(kind: str, z: torch.Tensor, coarse: torch.Tensor, factor: int,
                     to_physical=None, prior: str | None = None,
                     dry: float | None = None) -> torch.Tensor:
    """Apply constraint ``kind`` to raw output ``z``; see :data:`CONSTRAINTS`.

    ``to_physical`` maps ``z`` to physical units before the additive layer (the
    inverse of the model's transform); the multiplicative layer uses ``z`` as logits,
    plus the ``prior`` and the ``dry`` threshold (multiplicative only); the additive
    layer spreads its correction by the ``prior``.
    """
    if kind == "multiplicative":
        return multiplicative(z, coarse, factor, prior, dry)
    if kind == "additive":
        return additive(z if to_physical is None else to_physical(z), coarse, factor, prior)
    raise ValueError(f"Unknown constraint {kind!r}; use one of {CONSTRAINTS} or None.")
