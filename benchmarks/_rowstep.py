"""One bf16 SGD training step of a suite row's classifier on random CIFAR-sized images, for the per-step
benchmarks (fold_step.py, steer_fold_step.py): the suite's first backbone, channels_last, the CPU."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.execution.train import _autocast
from bench.zoo.models import build_classifier


def row_training_step(suite, row: dict, batch: int):
    """``(model, step)``: the row's classifier (seeded, training mode, channels_last) and a function doing one
    forward (bf16 autocast, cross-entropy with label smoothing 0.2), backward and SGD step on fixed random data."""
    dev = torch.device("cpu")
    torch.manual_seed(0)
    model = (
        build_classifier(
            suite.backbones[0], row, 3, 10, [0.49, 0.48, 0.45], [0.25, 0.24, 0.26], torch.rand(1, 3, 32, 32)
        )
        .train()
        .to(memory_format=torch.channels_last)
    )
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.85)
    x = torch.rand(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))

    def step() -> None:
        with _autocast(dev, True):
            loss = F.cross_entropy(model(x).float(), y, label_smoothing=0.2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return model, step
