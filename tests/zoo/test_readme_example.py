"""The README's "add a layer in one file" example is real: it registers and passes the contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import tests.zoo.test_contract as contract
from bench.zoo.layers import LAYERS

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def readme_family(tmp_path_factory):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    path = tmp_path_factory.mktemp("readme") / "my_layer.py"
    path.write_text(code)
    added = LAYERS.load_file(path)
    assert added == ["half-frozen"]
    yield "half-frozen"
    LAYERS.unregister("half-frozen")


def test_readme_family_passes_the_contract(readme_family):
    for stride in (1, 2):
        contract.test_output_shape(readme_family, stride, 4, 6)
    contract.test_gradients_reach_learned_and_not_fixed(readme_family)
    contract.test_fixed_parts_do_not_move_and_reload_exactly(readme_family)
    for bias in (False, True):
        contract.test_learned_count_matches_documented_formula(readme_family, bias, 4, 6, 3)
    contract.test_same_seed_same_output(readme_family)
    contract.test_macs_counted(readme_family)
    contract.test_metadata_complete(readme_family)
    contract.test_drops_into_a_backbone(readme_family)
    assert "half-frozen" in LAYERS.names()
