"""Whole models: input normalisation inside the model (so attacks and users feed pixels in [0, 1]) + backbone."""
from __future__ import annotations

import torch
from torch import nn

from bench.backbones import Ops, build_backbone


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


def build_classifier(backbone: dict, layer: dict, in_channels: int, num_classes: int,
                     mean: list[float], std: list[float], example: torch.Tensor) -> ImageClassifier:
    """Build and materialise (one example forward) a classifier; the caller seeds the RNG first."""
    ops = Ops.of(layer["name"], layer.get("options"), layer.get("stem"))
    model = ImageClassifier(build_backbone(backbone["name"], ops, in_channels, num_classes, backbone.get("options")),
                            mean, std)
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
