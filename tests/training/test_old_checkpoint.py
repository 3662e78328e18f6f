"""A checkpoint whose critic has the layout of an older xstochsr fails with a clear error."""

import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import xstochsr
from xstochsr.errors import CheckpointError
from xstochsr.models.blocks import ReflectConv, ResBlock
from xstochsr.models.critic import Critic
from xstochsr.training.config import TrainConfig
from xstochsr.training.data import synthetic_rain

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(factor=4, gen_width=16, gen_noise_channels=4, gen_encoder_blocks=1,
            gen_init_blocks=1, critic_width=16, critic_dense=16, critic_coarse_blocks=1,
            critic_stream_blocks=1, patch_size=4, seq_len=3, batch_size=4, critic_steps=1,
            split_block=8, val_every=0, checkpoint_every=0, progress=False)


def _old_layout_state(cfg) -> dict:
    """State of the critic as xstochsr wrote it before the paper-matched coarse path: a 3x3
    stem to ``width`` channels, then ``width``-wide residual blocks."""
    old = Critic(cfg)
    w = cfg.width
    old.coarse_stem = ReflectConv(cfg.coarse_channels, w, 3, sn=True)
    old.coarse_path = torch.nn.Sequential(
        *[ResBlock(w, w, "leaky", sn=True) for _ in range(cfg.coarse_blocks)])
    old.joint_blocks[0] = ResBlock(cfg.fine_widths[-1] + w, w, "leaky", sn=True)
    return old.state_dict()


def test_resuming_an_old_layout_checkpoint_raises_checkpoint_error(tmp_path):
    rain = synthetic_rain(24, 32, 32, seed=0)
    xstochsr.train(rain, steps=1, seed=0, checkpoint_dir=tmp_path, **TINY)
    (jpath,) = tmp_path.glob("ckpt-*.json")
    tpath = jpath.with_suffix(".safetensors")
    meta = json.loads(jpath.read_text())
    tensors = {k: v for k, v in load_file(tpath).items() if not k.startswith("critic/")}
    cfg = TrainConfig.from_dict(meta["config"]).critic_config()
    tensors.update({f"critic/{k}": v.contiguous() for k, v in _old_layout_state(cfg).items()})
    save_file(tensors, tpath, metadata={"format": "xstochsr-checkpoint"})
    meta["tensors_sha256"] = hashlib.sha256(tpath.read_bytes()).hexdigest()
    jpath.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="older xstochsr.*new training run"):
        xstochsr.train(rain, steps=2, resume=tmp_path, progress=False)
