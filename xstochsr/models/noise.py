"""Noise keyed by the *global* coarse cell: the same numbers whatever the tiling.

The generator's noise for member ``m`` of sequence ``b`` at time ``t`` is a field over
the coarse grid. Drawing that field from one generator per (m, b, t) would make every
value depend on the domain's size and on how it is cut into tiles. Here each value is a
pure function of ``(seed, member, sequence, stream, t, global y, global x, channel)``,
computed by the counter-based generator Philox4x64-10 (Salmon et al. 2011, "Parallel
random numbers: as easy as 1, 2, 3"; the generator numpy ships as
:class:`numpy.random.Philox`):

* key (2 x 64 bits): from ``SeedSequence(seed, spawn_key=(member, sequence, stream))``;
* counter (4 x 64 bits): ``(x, y, t, channel // 4)``; one Philox block gives four
  64-bit words, turned into four standard normals by the Box-Muller transform.

The whole window is computed at once with numpy integer arithmetic (no Python loop
per cell), so a window ``[y0:y1, x0:x1]`` of the global grid gets exactly the numbers
any larger or smaller window gives at the same cells. ``tests/models/test_noise.py``
checks the implementation word for word against :class:`numpy.random.Philox`.

:func:`cell_noise_torch` computes the same stream with torch on any device, for many
(member, sequence) keys in one pass: on a GPU the noise is then drawn where it is used
instead of on the host and copied. Torch has no unsigned 64-bit arithmetic, so words
are held in int64, whose multiplication and addition wrap modulo 2**64 exactly as
unsigned ones do; right shifts are masked to be logical. Its 64-bit words equal
:func:`philox4x64`'s bit for bit; the normals differ from :func:`cell_noise`'s at most
by the last bit of a float64 ``log``/``cos``/``sin`` before rounding to float32.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cell_noise", "cell_noise_torch", "philox4x64", "philox4x64_torch", "philox_key"]

_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
#: Philox4x64 round multipliers and Weyl key increments (Random123).
_MUL0, _MUL1 = np.uint64(0xD2E7470EE14C6C93), np.uint64(0xCA5A826395121157)
_W0, _W1 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBB67AE8584CAA73B)
_ROUNDS = 10
_TWO_PI = 2.0 * np.pi
_U53 = 2.0**-53


def _mulhilo(a: np.uint64, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Full 128-bit product of 64-bit words: ``(hi, lo)``, element-wise."""
    al, ah = a & _M32, a >> _S32
    bl, bh = b & _M32, b >> _S32
    ll, lh, hl, hh = al * bl, al * bh, ah * bl, ah * bh
    mid = (ll >> _S32) + (lh & _M32) + (hl & _M32)
    hi = hh + (lh >> _S32) + (hl >> _S32) + (mid >> _S32)
    return hi, a * b


def philox4x64(counter: tuple[np.ndarray, ...], key: tuple[int, int]) -> list[np.ndarray]:
    """Philox4x64-10 of ``counter`` (four uint64 arrays, broadcast) under ``key``.

    Parameters
    ----------
    counter : tuple of 4 array_like of uint64
        The four counter words; arrays broadcast against each other.
    key : (int, int)
        The two 64-bit key words.

    Returns
    -------
    list of 4 ndarray of uint64, the broadcast shape of ``counter``
    """
    with np.errstate(over="ignore"):
        c0, c1, c2, c3 = np.broadcast_arrays(*(np.asarray(c, dtype=np.uint64) for c in counter))
        c0, c1, c2, c3 = (c.copy() for c in (c0, c1, c2, c3))
        k0, k1 = np.uint64(key[0]), np.uint64(key[1])
        for r in range(_ROUNDS):
            if r:
                k0, k1 = k0 + _W0, k1 + _W1
            hi0, lo0 = _mulhilo(_MUL0, c0)
            hi1, lo1 = _mulhilo(_MUL1, c2)
            c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return [c0, c1, c2, c3]


def philox_key(seed: int, member: int, sequence: int, stream: int) -> tuple[int, int]:
    """Return the 128-bit Philox key of one (seed, member, sequence, stream)."""
    ss = np.random.SeedSequence(int(seed), spawn_key=(int(member), int(sequence), int(stream)))
    k = ss.generate_state(2, dtype=np.uint64)
    return int(k[0]), int(k[1])


def _box_muller(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two independent standard normals from two uint64 words (53-bit uniforms)."""
    u1 = ((a >> np.uint64(11)).astype(np.float64) + 1.0) * _U53  # (0, 1]
    u2 = (b >> np.uint64(11)).astype(np.float64) * _U53  # [0, 1)
    r = np.sqrt(-2.0 * np.log(u1))
    return r * np.cos(_TWO_PI * u2), r * np.sin(_TWO_PI * u2)


def cell_noise(seed: int, member: int, t: int, stream: int, y0: int, y1: int, x0: int,
               x1: int, channels: int, *, sequence: int = 0) -> np.ndarray:
    """Draw standard normal noise on the coarse window ``[y0:y1, x0:x1]`` of the global grid.

    Parameters
    ----------
    seed : int
        The user's seed (>= 0).
    member : int
        Member index.
    t : int
        Global time index.
    stream : int
        Independent uses at the same cell and time (``models.base.NOISE``,
        ``INIT_NOISE``, ...).
    y0, y1, x0, x1 : int
        The window, in global coarse cells (``0 <= y0 < y1``, ``0 <= x0 < x1``).
    channels : int
        Noise channels (C).
    sequence : int, default 0
        Global index of the sequence (the batched other dims: levels, leads), so
        independent sequences get independent noise.

    Returns
    -------
    ndarray (C, y1 - y0, x1 - x0), float32
        Independent standard normals; the value at a global cell does not depend on the
        window.

    Examples
    --------
    >>> big = cell_noise(0, 1, 5, 0, 0, 8, 0, 8, 3)
    >>> small = cell_noise(0, 1, 5, 0, 2, 4, 3, 8, 3)
    >>> bool((big[:, 2:4, 3:8] == small).all())
    True
    """
    c = int(channels)
    if min(y0, x0, t) < 0 or y1 < y0 or x1 < x0 or c < 0:
        raise ValueError(f"cell_noise needs 0 <= y0 <= y1, 0 <= x0 <= x1, t >= 0 and "
                         f"channels >= 0, got y {y0}:{y1}, x {x0}:{x1}, t {t}, C {c}.")
    key = philox_key(seed, member, sequence, stream)
    groups = -(-c // 4)
    ys = np.arange(y0, y1, dtype=np.uint64)[None, :, None]
    xs = np.arange(x0, x1, dtype=np.uint64)[None, None, :]
    gs = np.arange(groups, dtype=np.uint64)[:, None, None]
    w = philox4x64((xs, ys, np.uint64(t), gs), key)  # 4 x (G, H, W)
    z0, z1 = _box_muller(w[0], w[1])
    z2, z3 = _box_muller(w[2], w[3])
    out = np.stack([z0, z1, z2, z3], axis=1)  # (G, 4, H, W): channel 4g + j
    return out.reshape(groups * 4, y1 - y0, x1 - x0)[:c].astype(np.float32)


# --- the same stream with torch, on any device ------------------------------------------

_MASK64 = (1 << 64) - 1


def _signed(v: int) -> int:
    """Return the int64 with the bits of a 64-bit unsigned value."""
    v &= _MASK64
    return v - (1 << 64) if v >= 1 << 63 else v


def _shr(x, s: int):
    """Logical right shift of int64 words (torch's ``>>`` is arithmetic)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def _mulhilo_torch(a: int, b):
    """``(hi, lo)`` of the 128-bit product of the constant ``a`` and int64 words ``b``."""
    m32 = 0xFFFFFFFF
    al, ah = a & m32, a >> 32
    bl, bh = b & m32, _shr(b, 32)
    ll, lh, hl, hh = bl * al, bh * al, bl * ah, bh * ah  # each wraps like uint64
    mid = _shr(ll, 32) + (lh & m32) + (hl & m32)
    hi = hh + _shr(lh, 32) + _shr(hl, 32) + _shr(mid, 32)
    return hi, b * _signed(a)


def philox4x64_torch(counter, keys):
    """Philox4x64-10 with torch: :func:`philox4x64` for many keys at once.

    Parameters
    ----------
    counter : tuple of 4 int64 Tensors
        The counter words (bits of uint64 held in int64), broadcast against each other
        and against the keys.
    keys : int64 Tensor ``(N, 2)``
        One 128-bit key per row (:func:`philox_key`, as int64 bits).

    Returns
    -------
    list of 4 int64 Tensors ``(N, *broadcast shape of counter)``
    """
    import torch

    n = keys.shape[0]
    ndim = max(c.dim() for c in counter)
    k0 = keys[:, 0].reshape(n, *([1] * ndim))
    k1 = keys[:, 1].reshape(n, *([1] * ndim))
    c0, c1, c2, c3 = torch.broadcast_tensors(*(c.unsqueeze(0) for c in counter), k0)[:4]
    w0, w1 = _signed(int(_W0)), _signed(int(_W1))
    for r in range(_ROUNDS):
        if r:
            k0, k1 = k0 + w0, k1 + w1
        hi0, lo0 = _mulhilo_torch(int(_MUL0), c0)
        hi1, lo1 = _mulhilo_torch(int(_MUL1), c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return [c0, c1, c2, c3]


def _box_muller_torch(a, b):
    import torch

    u1 = (_shr(a, 11).to(torch.float64) + 1.0) * _U53
    u2 = _shr(b, 11).to(torch.float64) * _U53
    r = torch.sqrt(-2.0 * torch.log(u1))
    return r * torch.cos(_TWO_PI * u2), r * torch.sin(_TWO_PI * u2)


def cell_noise_torch(seed: int, members, t: int, stream: int, y0: int, y1: int, x0: int,
                     x1: int, channels: int, *, sequences, device="cpu"):
    """:func:`cell_noise` for every (member, sequence) pair at once, drawn on ``device``.

    Parameters
    ----------
    seed, t, stream, y0, y1, x0, x1, channels
        As for :func:`cell_noise`.
    members, sequences : sequence of int
        Row ``i * len(sequences) + b`` is member ``members[i]`` of sequence
        ``sequences[b]``.
    device : str or torch.device

    Returns
    -------
    Tensor ``(len(members) * len(sequences), C, y1 - y0, x1 - x0)``, float32, on
    ``device``: row by row the numbers of :func:`cell_noise` (see the module notes on
    the last bit).
    """
    import torch

    c = int(channels)
    if min(y0, x0, t) < 0 or y1 < y0 or x1 < x0 or c < 0:
        raise ValueError(f"cell_noise_torch needs 0 <= y0 <= y1, 0 <= x0 <= x1, t >= 0 and "
                         f"channels >= 0, got y {y0}:{y1}, x {x0}:{x1}, t {t}, C {c}.")
    keys = [philox_key(seed, m, b, stream) for m in members for b in sequences]
    kt = torch.tensor([[_signed(k0), _signed(k1)] for k0, k1 in keys], dtype=torch.int64,
                      device=device).reshape(-1, 2)
    groups = -(-c // 4)
    dev = kt.device
    ys = torch.arange(y0, y1, dtype=torch.int64, device=dev)[None, :, None]
    xs = torch.arange(x0, x1, dtype=torch.int64, device=dev)[None, None, :]
    gs = torch.arange(groups, dtype=torch.int64, device=dev)[:, None, None]
    tt = torch.full((1, 1, 1), int(t), dtype=torch.int64, device=dev)
    w = philox4x64_torch((xs, ys, tt, gs), kt)  # 4 x (N, G, H, W)
    z0, z1 = _box_muller_torch(w[0], w[1])
    z2, z3 = _box_muller_torch(w[2], w[3])
    out = torch.stack([z0, z1, z2, z3], dim=2)  # (N, G, 4, H, W): channel 4g + j
    n = kt.shape[0]
    return out.reshape(n, groups * 4, y1 - y0, x1 - x0)[:, :c].to(torch.float32)
