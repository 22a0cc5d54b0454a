"""The cache is an optimisation (issue 19, item 6): an unusable $BENCH_CACHE warns once and the run proceeds;
a failed cache write loses nothing; the cache stays under its size cap."""

from __future__ import annotations

import errno
import os

import pytest
import torch

import bench.cache
from bench.zoo.datasets import ImageData, cached


@pytest.fixture
def fresh_cache_state(monkeypatch):
    monkeypatch.setattr(bench.cache, "_WARNED", set())
    monkeypatch.setattr(bench.cache, "_FALLBACK", {})


def _data():
    x = torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
    y = torch.tensor([0, 1])
    return ImageData("tiny", x, y, x, y, ["a", "b"])


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_unusable_cache_warns_once_and_the_load_proceeds(tmp_path, monkeypatch, capsys, fresh_cache_state, where):
    blocker = tmp_path / "cache-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("BENCH_CACHE", str(blocker if where == "a file" else blocker / "sub"))
    builds = []

    def build():
        builds.append(1)
        return _data()

    first = cached("tiny-key", build)  # was: FileExistsError / NotADirectoryError, the run failed
    second = cached("tiny-key", build)
    assert torch.equal(first.train_x, second.train_x)
    err = capsys.readouterr().err
    assert err.count("bench: warning: cache") == 1 and "running without it" in err and str(blocker) in err
    assert len(err.strip().splitlines()) == 1
    assert len(builds) == 1  # the temporary stand-in cache served the second load of this process
    assert blocker.read_text() == "not a folder"


def test_a_failed_cache_write_loses_nothing(tmp_path, monkeypatch, capsys, fresh_cache_state):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))

    def full_disk(obj, f, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    for _ in range(2):
        assert cached("tiny-key", _data).classes == ["a", "b"]
    err = capsys.readouterr().err
    assert err.count("No space left on device") == 1 and "going on without caching" in err
    assert not [p for p in (tmp_path / "cache").iterdir()]  # no partial or temporary file left


def test_prune_evicts_least_recently_used_first_and_keeps_the_entry_in_use(tmp_path):
    files = []
    for i in range(5):
        p = tmp_path / f"e{i}.pt"
        p.write_bytes(b"x" * 1000)
        os.utime(p, (1000 + i, 1000 + i))  # e0 least recently used … e4 most
        files.append(p)
    os.utime(files[0], (5000, 5000))  # e0 was just used (bench.cache.touch on a hit)
    keep = files[1]
    removed = bench.cache.prune(tmp_path, 2500, keep=keep, pattern="*.pt")
    # oldest first, skipping the one in use, until under the cap; e0, oldest written but just used, stays
    assert removed == [files[2], files[3], files[4]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e0.pt", "e1.pt"]
