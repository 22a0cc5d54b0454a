"""The contract every registered layer family must pass, auto-parametrised over the registry.

A family added later — a file in bench/zoo/layers/, or an installed plug-in's entry point — is
covered here without editing this file. A family in a file given to ``bench run --layers FILE`` is covered
with ``BENCH_LAYERS=FILE pytest tests/zoo/test_contract.py`` (several files: separated by ``os.pathsep``, ``:``).
"""

from __future__ import annotations

import copy
import os

import pytest
import torch

from bench.zoo.backbones import Ops, build_backbone
from bench.zoo.layers import LAYERS, as_written, count_parameters, fixed_tensors
from bench.measure.measure import count_macs
from bench.zoo.models import materialise

for _file in filter(None, os.environ.get("BENCH_LAYERS", "").split(os.pathsep)):
    LAYERS.load_file(_file)  # plug-in families, as `bench run --layers FILE` loads them
FAMILIES = LAYERS.names()
CIN, COUT, K, HW = 4, 6, 3, 8


def build(name, cin=CIN, cout=COUT, k=K, stride=1, seed=0, bias=False):
    torch.manual_seed(seed)
    layer = LAYERS.get(name).build(cin, cout, k, stride, None, bias)
    x = torch.randn(2, cin, HW, HW, generator=torch.Generator().manual_seed(123))
    materialise(layer, x)
    return layer, x


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("cin,cout", [(4, 6), (6, 4), (3, 16)])
def test_output_shape(name, stride, cin, cout):
    layer, x = build(name, cin, cout, stride=stride)
    y = layer(x)
    assert y.shape == (2, cout, HW // stride, HW // stride)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", FAMILIES)
def test_gradients_reach_learned_and_not_fixed(name):
    layer, x = build(name)
    x.requires_grad_(True)
    layer.train()
    (layer(x) ** 2).mean().backward()
    learned = [(n, p) for n, p in layer.named_parameters() if p.requires_grad]
    assert learned, f"{name} has no learned parameter"
    for n, p in learned:
        assert p.grad is not None, f"no gradient reached learned parameter {n}"
        assert p.grad.abs().sum() > 0, f"gradient of learned parameter {n} is all zero"
    for n, p in layer.named_parameters():
        if not p.requires_grad:
            assert p.grad is None, f"gradient reached frozen parameter {n}"
    assert x.grad is not None and x.grad.abs().sum() > 0, "gradient does not reach the input"


@pytest.mark.parametrize("name", FAMILIES)
def test_fixed_parts_do_not_move_and_reload_exactly(name):
    layer, x = build(name)
    fixed_before = {k: v.clone() for k, v in fixed_tensors(layer).items()}
    frozen_before = {n: p.detach().clone() for n, p in layer.named_parameters() if not p.requires_grad}
    learned_before = {n: p.detach().clone() for n, p in layer.named_parameters() if p.requires_grad}
    opt = torch.optim.SGD([p for p in layer.parameters() if p.requires_grad], lr=0.5, momentum=0.9, weight_decay=0.1)
    for _ in range(2):
        opt.zero_grad()
        (layer(x) ** 2).mean().backward()
        opt.step()
    for k, v in fixed_tensors(layer).items():
        assert torch.equal(v, fixed_before[k]), f"fixed tensor {k} changed in an optimiser step"
    for n, p in layer.named_parameters():
        if not p.requires_grad:
            assert torch.equal(p, frozen_before[n]), f"frozen parameter {n} changed"
    assert any(not torch.equal(p, learned_before[n]) for n, p in layer.named_parameters() if p.requires_grad)

    # a fresh layer built from another seed, loaded from the state dict, is the same layer
    other, _ = build(name, seed=99)
    other.load_state_dict(layer.state_dict())
    layer.eval(), other.eval()
    for k, v in fixed_tensors(other).items():
        assert torch.equal(v, fixed_tensors(layer)[k]), f"fixed tensor {k} not restored by load_state_dict"
    assert torch.equal(layer(x), other(x))


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("cin,cout,k", [(4, 6, 3), (8, 8, 5), (3, 16, 3)])
def test_learned_count_matches_documented_formula(name, bias, cin, cout, k):
    family = LAYERS.get(name)
    assert family.learned_params is not None, f"{name} declares no learned-parameter formula"
    layer, _ = build(name, cin, cout, k, bias=bias)
    assert count_parameters(layer)["learned"] == family.expected_learned(cin, cout, k, bias)


@pytest.mark.parametrize("name", FAMILIES)
def test_same_seed_same_output(name):
    a, x = build(name, seed=7)
    b, _ = build(name, seed=7)
    a.eval(), b.eval()
    assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("stride", [1, 2])
def test_a_fold_switch_keeps_the_function(name, stride):
    """A family with a faster path (a boolean ``fold`` switch on some module, e.g. a filter bank and a 1×1
    folded into one convolution) computes the same outputs and gradients, in float64, with it off: the layer as
    written, which is also what the MACs count (bench.zoo.layers.as_written)."""
    layer, x = build(name, stride=stride)
    layer = layer.double()
    x = x.double().requires_grad_()
    if not any(getattr(m, "fold", None) is True for m in layer.modules()):
        pytest.skip(f"{name}: no fold switch")

    def forward_backward():
        for p in list(layer.parameters()) + [x]:
            p.grad = None
        y = layer(x)
        (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
        return [y.detach(), x.grad.clone()] + [p.grad.clone() for p in layer.parameters() if p.requires_grad]

    fast = forward_backward()
    with as_written(layer):
        slow = forward_backward()
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", FAMILIES)
def test_macs_counted(name):
    layer, x = build(name)
    assert count_macs(layer, x) > 0


@pytest.mark.parametrize("name", FAMILIES)
def test_metadata_complete(name):
    f = LAYERS.get(name)
    for field in ("document", "section", "fixed", "learned", "summary"):
        assert getattr(f, field), f"{name}: metadata field {field!r} is empty"
    assert f.compile is True or (isinstance(f.compile, str) and f.compile), "compile must be True or a reason"


@pytest.mark.parametrize("name", FAMILIES)
def test_runs_under_torch_compile(name):
    family = LAYERS.get(name)
    if family.compile is not True:
        pytest.skip(f"{name} declares it cannot compile: {family.compile}")
    layer, x = build(name)
    layer.eval()
    ref = layer(x)
    compiled = torch.compile(copy.deepcopy(layer), backend="aot_eager", fullgraph=False)
    out = compiled(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    compiled.train()
    compiled(x).sum().backward()


@pytest.mark.parametrize("name", FAMILIES)
def test_drops_into_a_backbone(name):
    """Every family builds a whole network, and a training step changes its output."""
    torch.manual_seed(0)
    net = build_backbone("preact-resnet", Ops.of(name), 3, 5, {"n": 1, "width": 1})
    x = torch.randn(4, 3, 16, 16)
    materialise(net, x)
    y = net(x)
    assert y.shape == (4, 5)
    counts = count_parameters(net)
    assert counts["learned"] > 0 and counts["total"] == counts["learned"] + counts["fixed"]
