"""benchmarks/train_speed.py detects native bf16 from the CPU flags or the CUDA capability."""

import builtins
import io

from repo_files import load_script

speed = load_script("benchmarks/train_speed.py", "train_speed_bench")


def _cpuinfo(monkeypatch, flags):
    real_open = builtins.open

    def fake(path, *a, **k):
        if str(path) == "/proc/cpuinfo":
            return io.StringIO(f"processor : 0\nflags : fpu sse2 {flags}\n")
        return real_open(path, *a, **k)

    monkeypatch.setattr(builtins, "open", fake)


def test_bf16_flags(monkeypatch):
    _cpuinfo(monkeypatch, "avx2 avx512f")
    assert speed.native_bf16("cpu") == (False, "CPU has neither avx512_bf16 nor amx_bf16")
    _cpuinfo(monkeypatch, "avx512f avx512_bf16 amx_bf16 amx_tile")
    ok, why = speed.native_bf16("cpu")
    assert ok and why == "CPU flags amx_bf16, avx512_bf16"


def test_cuda_without_a_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert speed.native_bf16("cuda") == (False, "no CUDA device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    assert speed.native_bf16("cuda:0")[0]
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (7, 5))
    assert not speed.native_bf16("cuda")[0]
