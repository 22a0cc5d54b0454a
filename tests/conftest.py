import pytest
import torch

# tiny tensors: one thread is as fast and does not fight pytest workers or other processes
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Decoded data sets are cached per test session, never in the user's home."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path_factory.getbasetemp() / "bench-cache"))
