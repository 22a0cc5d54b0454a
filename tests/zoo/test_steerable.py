"""Dynamic steerable blocks (002 ch. 4) and the textured-blob boundary task (002 §4.4.2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.zoo.backbones import Ops, build_backbone
from bench.zoo.layers import LAYERS, count_parameters
from bench.zoo.layers.steerable import SteerableBlock, gaussian_basis, grid, steer_basis
from bench.tasks import RunContext
from bench.zoo.datasets.blobs import boundary_of, generate, make_example
from bench.tasks.blob_boundary import boundary_counts, boundary_scores


@pytest.mark.parametrize("theta", [0.3, 1.1, 2.7, -0.9])
def test_steered_basis_equals_basis_on_rotated_grid(theta):
    k, sigma = 7, 1.3
    basis = gaussian_basis(k, sigma, 0, 3)
    x, y = grid(k)
    c, s = math.cos(theta), math.sin(theta)
    rotated = gaussian_basis(k, sigma, 0, 3, c * x + s * y, -s * x + c * y)  # f(R⁻¹p)
    torch.testing.assert_close(steer_basis(basis, theta, 0, 3), rotated, rtol=0, atol=1e-12)
    # and it is a real rotation: not the unrotated basis
    assert (rotated - basis).abs().max() > 1e-2


def test_steering_rules_of_eq22():
    theta = 0.7
    c, s = math.cos(theta), math.sin(theta)
    b = gaussian_basis(5, 1.0, 1, 3)  # atoms: Gx, Gy | Gxx, Gxy, Gyy | Gxxx, Gxxy, Gxyy, Gyyy
    st = steer_basis(b, theta, 1, 3)
    torch.testing.assert_close(st[0], c * b[0] + s * b[1])  # cos θ·G_x + sin θ·G_y
    torch.testing.assert_close(st[1], -s * b[0] + c * b[1])  # the orthogonal atom
    # Eq. 22 as printed is written with y pointing up: G_xy and G_yyy change sign against our y-down grid
    gxy_up, gyyy_up = -b[3], -b[8]
    torch.testing.assert_close(st[2], c * c * b[2] - 2 * c * s * gxy_up + s * s * b[4])
    torch.testing.assert_close(st[5], c**3 * b[5] - 3 * c * c * s * (-b[6]) + 3 * c * s * s * b[7] - s**3 * gyyy_up)


def _block(pose_per="location", min_order=0, max_order=2, cin=2, cout=3):
    torch.manual_seed(0)
    return (
        LAYERS.get("steer-dynamic")
        .build(cin, cout, 5, 1, None, True, min_order=min_order, max_order=max_order, pose_per=pose_per)
        .double()
    )


@pytest.mark.parametrize("pose_per", ["location", "output"])
def test_rotating_input_by_90_with_true_angle_rotates_output(pose_per):
    block = _block(pose_per)
    x = torch.randn(1, 2, 11, 11, dtype=torch.double, generator=torch.Generator().manual_seed(1))
    th0 = 0.4
    # an oriented field of true angles, rotated along with the image
    theta = th0 + 0.3 * torch.randn(1, 1, 11, 11, dtype=torch.double, generator=torch.Generator().manual_seed(2))
    if pose_per == "output":
        theta = theta.expand(1, 3, 11, 11).clone()
    out = block(x, theta=theta)
    rot = lambda t: torch.rot90(t, 1, (2, 3))  # noqa: E731  (counter-clockwise on screen = −90° with y down)
    out_rot = block(rot(x), theta=rot(theta) - math.pi / 2)
    torch.testing.assert_close(out_rot, rot(out), rtol=0, atol=1e-10)
    wrong = block(rot(x), theta=rot(theta))  # not re-steering the basis breaks it
    assert (wrong - rot(out)).abs().max() > 1e-3


@pytest.mark.parametrize("steering", ["trig", "linear"])
@pytest.mark.parametrize("pose_per", ["location", "output"])
def test_folded_steering_equals_steering_every_atom(pose_per, steering):
    """The fast path (steering folded into W) computes the equations' function: output and every gradient equal
    the path that steers each atom of Φ and then mixes (float64), for both pose layouts it serves."""
    torch.manual_seed(0)
    block = (
        LAYERS.get("steer-dynamic")
        .build(3, 4, 3, 1, None, True, steering=steering, pose_per=pose_per, min_order=0, max_order=3)
        .double()
    )
    x = torch.randn(2, 3, 7, 7, dtype=torch.double, requires_grad=True)
    phi = block.frame(x)
    c, s = block._cos_sin(block.pose_of(phi))
    phi = phi.view(2, 3, block.M, 7, 7)
    fast = block._forward_folded(phi, c, s)
    if pose_per == "location":
        slow = block._forward_steered_atoms(phi, c, s)
    else:  # one pose per output channel: output o is the atom-steered block at that channel's pose
        slow = torch.stack(
            [block._forward_steered_atoms(phi, c[:, o : o + 1], s[:, o : o + 1])[:, o] for o in range(4)], 1
        )
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)
    params = [x] + [p for p in block.parameters()]
    g_fast = torch.autograd.grad((fast**2).sum(), params, retain_graph=True)
    g_slow = torch.autograd.grad((slow**2).sum(), params)
    for a, b in zip(g_fast, g_slow):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert fast.abs().max() > 1e-3 and all(g.abs().sum() > 0 for g in g_fast)


def test_forward_takes_the_folded_path_for_a_shared_pose():
    """forward() routes one pose per location through the folded path and one per input channel through the
    atom-steering path (the folded one cannot serve it)."""
    torch.manual_seed(0)
    calls = []
    for pose_per in ("location", "input", "output"):
        block = LAYERS.get("steer-dynamic").build(3, 4, 3, 1, None, False, pose_per=pose_per)
        fold, atoms_ = block._forward_folded, block._forward_steered_atoms
        block._forward_folded = lambda *a, f=fold: calls.append((pose_per, "folded")) or f(*a)
        block._forward_steered_atoms = lambda *a, f=atoms_: calls.append((pose_per, "atoms")) or f(*a)
        block(torch.randn(1, 3, 6, 6))
    assert calls == [("location", "folded"), ("input", "atoms"), ("output", "folded")]


@pytest.mark.parametrize("steering", ["trig", "linear"])
def test_gradients_reach_pose_network(steering):
    torch.manual_seed(0)
    block = LAYERS.get("steer-dynamic").build(3, 4, 3, 1, None, False, steering=steering, pose_per="input")
    x = torch.randn(2, 3, 8, 8)
    (block(x) ** 2).mean().backward()
    pose_params = list(block.pose.parameters())
    assert len(pose_params) == 6
    for p in pose_params:
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_static_block_is_dynamic_block_at_fixed_angle():
    torch.manual_seed(0)
    dyn = LAYERS.get("steer-dynamic").build(2, 3, 5, 1, None, False)
    stat0 = LAYERS.get("steer-static").build(2, 3, 5, 1, None, False)
    stat = LAYERS.get("steer-static").build(2, 3, 5, 1, None, False, angle=0.8)
    stat0.weight.data.copy_(dyn.weight.data)
    stat.weight.data.copy_(dyn.weight.data)
    assert stat.pose is None and count_parameters(stat)["learned"] == 3 * 2 * 6
    x = torch.randn(2, 2, 9, 9)
    torch.testing.assert_close(stat(x), dyn(x, theta=0.8), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stat0(x), dyn(x, theta=0.0), rtol=1e-5, atol=1e-6)
    assert (stat(x) - stat0(x)).abs().max() > 1e-3


def test_bsd_backbone_alternates_dynamic_and_static_blocks():
    torch.manual_seed(0)
    net = build_backbone(
        "dynresnet-bsd", Ops.of("steer-dynamic", {"max_order": 1}), 3, 1, {"stem": 4, "width": 6, "top": 8, "pairs": 2}
    )
    blocks = [m for m in net.modules() if isinstance(m, SteerableBlock)]
    dynamic = [m.pose is not None for m in blocks]
    # stem, 2 × (1 dynamic block, 2 static convs in the residual block), top
    assert dynamic == [True, True, False, False, True, False, False, True]
    assert net(torch.randn(2, 3, 12, 12)).shape == (2, 1, 12, 12)


# ---------------------------------------------------------------------------------------------------- data


@pytest.mark.parametrize("mode", ["binary", "texture", "hard"])
def test_generator_is_deterministic_per_seed(mode):
    a = generate(3, 1, 0, 4, 24, mode)
    b = generate(3, 1, 0, 4, 24, mode)
    c = generate(4, 1, 0, 4, 24, mode)
    for u, v in zip(a, b):
        assert torch.equal(u, v)
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[1], c[1])
    # an image depends on its own index only: a shifted window reproduces the overlap
    d = generate(3, 1, 2, 2, 24, mode)
    assert torch.equal(d[0], a[0][2:])


def test_boundary_target_is_the_mask_edge():
    from skimage.segmentation import find_boundaries

    for i in range(6):
        img, mask, bound = make_example(np.random.default_rng([0, i]), 32, "texture", 3)
        assert 0 < mask.sum() < mask.size
        assert np.array_equal(bound, find_boundaries(mask.astype(int), connectivity=1, mode="thick"))
    tiny = np.zeros((5, 5), bool)
    tiny[2, 2] = True
    expect = np.zeros((5, 5), bool)
    expect[2, 1:4] = expect[1:4, 2] = True
    assert np.array_equal(boundary_of(tiny), expect)


def test_binary_images_are_two_level_and_match_mask():
    img, mask, _ = make_example(np.random.default_rng(5), 32, "binary", 2)
    assert len(np.unique(img)) == 2 and len(np.unique(img[mask])) == 1


def test_boundary_scores_on_hand_cases():
    gt = torch.zeros(1, 6, 6, dtype=torch.bool)
    gt[0, 2, 1:5] = True  # 4 target pixels
    ths = torch.linspace(0.01, 0.99, 9)
    perfect = boundary_scores(boundary_counts(gt.float(), gt, ths, tol=0))
    assert perfect["ods"] == pytest.approx(100) and perfect["ois"] == pytest.approx(100)
    prob = torch.zeros(1, 6, 6)
    prob[0, 3, 1:3] = 0.9  # 2 predictions one row off the target
    prob[0, 0, 5] = 0.9  # 1 far-off prediction
    c0 = boundary_counts(prob, gt, ths, tol=0)
    assert boundary_scores(c0)["ods"] == pytest.approx(0.0)
    c1 = boundary_counts(prob, gt, ths, tol=1)  # within 1 px: P = 2/3, R = 2/4 → F = 4/7
    assert c1["pred"][0, 0] == 3 and c1["pred_ok"][0, 0] == 2 and c1["gt_ok"][0, 0] == 2
    assert boundary_scores(c1)["ods"] == pytest.approx(100 * 4 / 7)


def test_task_runs_end_to_end(tmp_path):
    import yaml

    from bench.execution.runner import run_specs
    from bench.spec.suite import load_suite

    suite = yaml.safe_load(open("suites/steerable.yaml"))
    suite["dataset"]["options"].update(size=16, test_images=8)
    suite["task"]["options"].update(train_images=16, figure_examples=2)
    suite["protocol"].update(epochs=2, batch_size=8)
    suite["layers"] = suite["layers"][:1]
    suite["backbones"] = suite["backbones"][:1]  # the blob net only (the suite also runs dynresnet-bsd)
    suite["claims"] = []  # they name rows dropped above: an unbound claim is rejected on load
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(suite))
    s = load_suite(path)
    specs = s.expand()
    ctx = RunContext(device=torch.device("cpu"), progress=False)
    counts = run_specs(s, specs, tmp_path / "res", ctx, log=lambda *a: None)
    assert counts == {"ran": 1, "skipped": 0, "failed": 0}
    import json

    rec = json.loads(next((tmp_path / "res").rglob("*.json")).read_text())
    assert rec["status"] == "ok", rec.get("error")
    from bench.measure.measure import EPOCH_TIMING_FIELDS  # one training loop: the same timing fields as every task

    assert set(EPOCH_TIMING_FIELDS) <= set(rec["timing"]) and rec["timing"]["steps_per_epoch"] == 2
    m = rec["metrics"]
    for key in ("ods", "ois", "ap"):
        assert 0 <= m[key] <= 100
    assert m["ois"] >= m["ods"] - 1e-9
    assert len(rec["history"]) == 2 and rec["history"][-1]["images_seen"] == 32
    assert (
        rec["params"]["learned"]
        == LAYERS.get("steer-dynamic").expected_learned(1, 8, 5, True, **specs[0].layer["options"]) + 8 + 1
    )
    art = rec["artifacts"][0]
    assert (tmp_path / "res" / art["path"]).is_file() and "pose" in art["caption"]
