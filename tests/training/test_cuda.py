"""The CUDA path of training and of the networks.

These run only where a GPU exists; CI has none, so they skip there with a reason that
says how to run them. Run them on a GPU machine before a release (``scripts/release_check.sh``).
"""

import numpy as np
import pytest
import torch
from fields import TINY_TRAIN as TINY

import xstochsr
from xstochsr.models.critic import Critic, CriticConfig
from xstochsr.training.data import synthetic_rain
from xstochsr.training.objective import WGANGP

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a GPU machine and none was available here; run on a GPU machine: "
           "python -m pytest tests/test_api.py tests/training/test_cuda.py -k cuda")


def test_cuda_critic_and_penalty_match_cpu():
    torch.manual_seed(0)
    c = Critic(CriticConfig.small(4, width=16, dense=16)).eval()
    x, y = torch.rand(2, 3, 1, 4, 4), torch.rand(2, 3, 1, 16, 16)
    with torch.no_grad():
        cpu = c(x, y)
        gpu = c.to("cuda")(x.cuda(), y.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-4, atol=1e-4)
    loss, logs = WGANGP(10.0).critic_loss(c, x.cuda(), y.cuda(), torch.rand_like(y).cuda(),
                                          generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in c.parameters()
                                        if p.ndim > 1)


def test_cuda_training_runs_and_resumes(tmp_path):
    rain = synthetic_rain(24, 32, 32, seed=0)
    m = xstochsr.train(rain, steps=4, seed=1, device="cuda", checkpoint_dir=tmp_path, **TINY)
    assert m.card.training["hardware"]["device"].startswith("cuda")
    assert np.isfinite(m.history.loss_critic).all()
    r = xstochsr.train(rain, steps=5, resume=tmp_path, device="cuda", progress=False)
    assert r.card.training["steps"] == 5
