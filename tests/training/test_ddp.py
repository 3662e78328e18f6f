"""Data-parallel training: 2 processes with gloo on CPU, launched with torchrun."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from xstochsr.training.data import synthetic_rain

SCRIPT = textwrap.dedent("""
    import os, sys
    import torch
    torch.set_num_threads(1)
    import xarray as xr
    import xstochsr
    from safetensors.torch import save_file

    ds = xr.open_dataset(sys.argv[1]).load()
    out = sys.argv[2]
    m = xstochsr.train(ds, factor=4, steps=3, seed=3, checkpoint_dir=out + "/ck",
                       gen_width=16, gen_noise_channels=4, gen_encoder_blocks=1,
                       gen_init_blocks=1, critic_width=16, critic_dense=16,
                       critic_coarse_blocks=1, critic_stream_blocks=1, patch_size=4, seq_len=3,
                       batch_size=4, critic_steps=2, split_block=8, val_every=0, progress=False)
    r = os.environ["RANK"]
    save_file({k: v.contiguous() for k, v in m.generator.state_dict().items()},
              f"{out}/generator-{r}.safetensors")
    import torch.distributed as dist
    assert not dist.is_initialized()  # train() cleaned up the group it made
""")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_hold_identical_weights(tmp_path):
    pytest.importorskip("torch.distributed")
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    data = tmp_path / "data.nc"
    synthetic_rain(24, 32, 32, seed=0).to_netcdf(data)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={_free_port()}", str(script), str(data), str(tmp_path)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=110, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    a = load_file(tmp_path / "generator-0.safetensors")
    b = load_file(tmp_path / "generator-1.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the ranks drew different patches (their own RNG streams), so equal weights come
    # from the gradient averaging, and rank 0 wrote the checkpoint with both RNG states
    ckpts = sorted((tmp_path / "ck").glob("ckpt-*.json"))
    assert [p.name for p in ckpts] == ["ckpt-0000003.json"]
    meta = json.loads(ckpts[0].read_text())
    assert meta["world_size"] == 2 and len(meta["numpy_rng"]) == 2
    assert meta["numpy_rng"][0] != meta["numpy_rng"][1]
