"""Shared fixtures for the core tests: the tiny seeded CNN (tests/tiny_model.py), a real disk store
in a temporary directory, and a counter of the model's forward passes."""
from __future__ import annotations

import contextlib

import pytest

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
