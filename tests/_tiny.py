"""A tiny classification suite on the digits (two families, one seed, two batches) for tests of the run path."""

from __future__ import annotations

from pathlib import Path

from bench.spec.suite import Suite, load_suite

TEMPLATE = """
name: {name}
task: classification
dataset: digits
protocol: {{epochs: 1, batch_size: 64, max_batches: 2, augment: [], train_subset: 256, test_subset: 64}}
backbones: [{{name: preact-resnet, options: {{n: 1, width: 1}}}}]
layers: [conv, sep-chans]
seeds: [0]
"""


def digits_suite(folder: Path, name: str) -> Suite:
    """The tiny suite, written to ``folder/<name>.yaml`` and loaded (its records land under ``<name>/``)."""
    path = folder / f"{name}.yaml"
    path.write_text(TEMPLATE.format(name=name))
    return load_suite(path)
