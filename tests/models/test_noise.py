"""Noise keyed by the global coarse cell (xstochsr.models.noise)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from xstochsr.models.noise import cell_noise, philox4x64


@pytest.mark.parametrize("key", [(0, 0), (12345, 678), (2**64 - 1, 2**63 + 5)])
def test_philox_matches_numpy(key):
    """Word for word numpy's Philox4x64-10 (which increments its counter before a block)."""
    start = np.array([5, 6, 7, 2**64 - 3], dtype=np.uint64)
    ref = np.random.Philox(key=np.array(key, dtype=np.uint64), counter=start).random_raw(12)
    c0 = np.array([6, 7, 8], dtype=np.uint64)
    ours = np.stack(philox4x64((c0, start[1], start[2], start[3]), key), axis=1).ravel()
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("window", [(0, 1, 0, 1), (3, 9, 2, 17), (10, 20, 0, 20), (0, 20, 19, 20)])
def test_window_independent(window):
    y0, y1, x0, x1 = window
    full = cell_noise(7, 3, 11, 0, 0, 20, 0, 20, 6, sequence=2)
    part = cell_noise(7, 3, 11, 0, y0, y1, x0, x1, 6, sequence=2)
    assert part.shape == (6, y1 - y0, x1 - x0) and part.dtype == np.float32
    np.testing.assert_array_equal(part, full[:, y0:y1, x0:x1])


def test_channel_count_only_truncates():
    """Fewer channels are the first channels of more (a card's noise_channels)."""
    np.testing.assert_array_equal(cell_noise(1, 0, 0, 0, 0, 5, 0, 5, 3),
                                  cell_noise(1, 0, 0, 0, 0, 5, 0, 5, 8)[:3])


def test_standard_normal_statistics():
    z = cell_noise(0, 0, 0, 0, 0, 112, 0, 112, 8).astype(np.float64)  # 1e5 values
    flat = z.ravel()
    assert abs(flat.mean()) < 4 / np.sqrt(flat.size)
    assert abs(flat.var() - 1) < 4 * np.sqrt(2 / flat.size)
    assert stats.kstest(flat, "norm").pvalue > 1e-3
    assert abs(stats.skew(flat)) < 0.05 and abs(stats.kurtosis(flat)) < 0.1


def _corr(a, b):
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_independent_across_cells_channels_members_times_streams():
    base = cell_noise(0, 0, 0, 0, 0, 100, 0, 100, 8).astype(np.float64)
    lim = 4 / np.sqrt(base[0].size)  # ~4 sigma for 1e4 pairs
    assert abs(_corr(base[:, :, 1:], base[:, :, :-1])) < lim / 2  # x neighbours (8e4 pairs)
    assert abs(_corr(base[:, 1:, :], base[:, :-1, :])) < lim / 2  # y neighbours
    for i in range(7):  # channels (within and across Philox blocks)
        assert abs(_corr(base[i], base[i + 1])) < lim
    others = {
        "member": cell_noise(0, 1, 0, 0, 0, 100, 0, 100, 8),
        "time": cell_noise(0, 0, 1, 0, 0, 100, 0, 100, 8),
        "stream": cell_noise(0, 0, 0, 1, 0, 100, 0, 100, 8),
        "seed": cell_noise(1, 0, 0, 0, 0, 100, 0, 100, 8),
        "sequence": cell_noise(0, 0, 0, 0, 0, 100, 0, 100, 8, sequence=1),
    }
    for what, other in others.items():
        assert not np.array_equal(other, base.astype(np.float32)), what
        assert abs(_corr(base, other)) < lim / 2, what
    # the counter's words do not alias: (t, y) swapped is not the same draw
    assert abs(_corr(cell_noise(0, 0, 3, 0, 5, 6, 0, 100, 8),
                     cell_noise(0, 0, 5, 0, 3, 4, 0, 100, 8))) < 0.15


def test_bad_window():
    with pytest.raises(ValueError, match="y0"):
        cell_noise(0, 0, 0, 0, -1, 3, 0, 3, 2)


# --- the torch implementation (drawn on the device that uses it) -----------------------


@pytest.mark.parametrize("key", [(0, 0), (12345, 678), (2**64 - 1, 2**63 + 5)])
def test_torch_philox_words_equal_numpy_bit_for_bit(key):
    import torch

    from xstochsr.models.noise import _signed, philox4x64_torch

    xs = np.array([0, 1, 2**32 - 1, 2**32, 2**63, 2**64 - 1], dtype=np.uint64)
    ref = philox4x64((xs, np.uint64(2**64 - 3), np.uint64(7), np.uint64(2)), key)
    t = [torch.tensor(xs.view(np.int64))] + [torch.tensor([_signed(v)]) for v in
                                             (2**64 - 3, 7, 2)]
    got = philox4x64_torch(tuple(t), torch.tensor([[_signed(key[0]), _signed(key[1])]]))
    for r, g in zip(ref, got, strict=True):
        np.testing.assert_array_equal(g[0].numpy(), r.view(np.int64))


def test_torch_cell_noise_is_cell_noise_for_every_member_and_sequence():
    from xstochsr.models.noise import cell_noise_torch

    members, sequences = (0, 5), (1, 2, 9)
    got = cell_noise_torch(3, members, 4, 1, 2, 30, 5, 41, 7, sequences=sequences).numpy()
    want = np.stack([cell_noise(3, m, 4, 1, 2, 30, 5, 41, 7, sequence=b)
                     for m in members for b in sequences])
    assert got.shape == want.shape == (6, 7, 28, 36) and got.dtype == np.float32
    # float64 log/cos/sin may differ in the last bit between libraries: float32 rarely moves
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert (got == want).mean() > 0.999


def test_cuda_noise_is_the_cpu_noise():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a GPU machine and none was available here; run on a GPU machine: "
                    "python -m pytest tests/models/test_noise.py -k cuda")
    from xstochsr.models.noise import cell_noise_torch

    kw = dict(sequences=(0, 3))
    cpu = cell_noise_torch(1, (0, 2), 6, 0, 0, 64, 3, 67, 8, **kw)
    gpu = cell_noise_torch(1, (0, 2), 6, 0, 0, 64, 3, 67, 8, device="cuda", **kw)
    assert gpu.device.type == "cuda"
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu.numpy(), rtol=0, atol=1e-6)
