"""Shared fixtures for the core tests: the tiny seeded CNN (tests/tiny_model.py), a real disk store
in a temporary directory, and a counter of the model's forward passes."""
from __future__ import annotations

import contextlib

import pytest
import torch

from featviz_core import Store, load_model

TINY = "tests.tiny_model:make"


@pytest.fixture(scope="session")
def tiny():
    """The tiny RGB model (64 px natural size), loaded once through load_model's factory path."""
    return load_model(TINY, device="cpu")


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "cache"))
    yield s
    s.close()


@contextlib.contextmanager
def count_forwards(module):
    """Counts calls of `module.forward` (pre-hook, so passes a LayerTap stops early count too)."""
    calls = []
    handle = module.register_forward_pre_hook(lambda _m, _inp: calls.append(1))
    try:
        yield calls
    finally:
        handle.remove()


@pytest.fixture
def single_thread():
    """The tiny model's tensors are so small that a second intra-op thread only adds synchronization;
    on a busy 2-core machine it made these tests ~20x slower. Restored after each test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
