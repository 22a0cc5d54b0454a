"""Whole models: input normalisation inside the model (so attacks and users feed pixels in [0, 1]) + backbone."""

from __future__ import annotations

import torch
from torch import nn

from bench.zoo.backbones import Ops, build_backbone


class Normalize(nn.Module):
    def __init__(self, mean: list[float], std: list[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class ImageClassifier(nn.Module):
    def __init__(self, backbone: nn.Module, mean: list[float], std: list[float]):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.backbone = backbone

    def forward(self, x):
        return self.backbone(self.normalize(x))


def build_classifier(
    backbone: dict,
    layer: dict,
    in_channels: int,
    num_classes: int,
    mean: list[float],
    std: list[float],
    example: torch.Tensor,
) -> ImageClassifier:
    """Build and materialise (one example forward) a classifier; the caller seeds the RNG first."""
    ops = Ops.of(layer["name"], layer.get("options"), layer.get("stem"))
    model = ImageClassifier(
        build_backbone(backbone["name"], ops, in_channels, num_classes, backbone.get("options")), mean, std
    )
    materialise(model, example)
    return model


@torch.no_grad()
def materialise(model: nn.Module, example: torch.Tensor) -> None:
    """One eval-mode forward so input-sized fixed tensors (e.g. perturbation masks) are created now, before
    counting, compiling or loading a state dict."""
    was = model.training
    model.eval()
    model(example[:1])
    model.train(was)


#: how many training images a data-initialised layer (e.g. a patch-whitening stem) is fitted on
DATA_INIT_IMAGES = 5000


@torch.no_grad()
def init_from_data(
    model: "ImageClassifier", train_x_u8: torch.Tensor, seed: int, device, images: int = DATA_INIT_IMAGES
) -> int:
    """Fit every module that defines ``init_from_data(x)`` on a seeded random sample of ``images`` training
    images (uint8, converted and normalised as the network's input is). The sample is drawn with its own
    generator, so the run's random stream is untouched, and at random (data loaded from class folders is
    sorted by class: a prefix would see one class). Returns how many modules were fitted (0 for most
    backbones, which then see no change at all)."""
    targets = [m for m in model.modules() if callable(getattr(m, "init_from_data", None)) and m is not model]
    if not targets:
        return 0
    gen = torch.Generator().manual_seed(10_007 + int(seed))
    idx = torch.randperm(len(train_x_u8), generator=gen)[:images]
    x = model.normalize(train_x_u8[idx].to(device).float().div_(255))
    for m in targets:
        m.init_from_data(x)
    return len(targets)
