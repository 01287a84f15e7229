"""Shared fixtures for the core tests: the tiny seeded CNN (tests/tiny_model.py), a real disk store
in a temporary directory, a counter of the model's forward passes, and the check the Ray cluster tests
skip on (or fail on, with FEATVIZ_REQUIRE_RAY=1 as CI sets it).

With FEATVIZ_NO_SKIPS=1 (CI sets it, .ci/run) any test that skips fails instead: FEATVIZ_REQUIRE_RAY and
FEATVIZ_REQUIRE_BROWSER say which dependency is missing; this catches every other skip, so CI never
passes by not running a test."""
from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess

import pytest
import torch

from featviz_core import Store, load_model

TINY = "tests.tiny_model:make"


def ray_cluster_or_skip() -> None:
    """The Ray cluster tests need the ray package and a network namespace of their own (`unshare -n`,
    as root) to keep Ray on loopback. Where either is missing they skip, unless FEATVIZ_REQUIRE_RAY is
    set (CI sets it, .ci/run): then they fail, so CI never passes by skipping them."""
    reason = None
    if importlib.util.find_spec("ray") is None:
        reason = "the ray package is not installed (requirements-dev.txt)"
    elif shutil.which("unshare") is None or subprocess.run(["unshare", "-n", "true"],
                                                           capture_output=True).returncode != 0:
        reason = "needs a network namespace (unshare -n, as root) to keep Ray on loopback"
    if reason:
        if os.environ.get("FEATVIZ_REQUIRE_RAY"):
            pytest.fail(f"FEATVIZ_REQUIRE_RAY is set but {reason}")
        pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and os.environ.get("FEATVIZ_NO_SKIPS"):
        report.outcome = "failed"
        report.longrepr = f"FEATVIZ_NO_SKIPS is set but this test skipped: {report.longrepr}"


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


@contextlib.contextmanager
def rendered_store(model, folder, layers: dict, settings):
    """A real store holding `model`'s renders of `layers` ({layer: channels}), rendered with one torch
    thread (see single_thread); closed and the thread count restored after."""
    from featviz_core import Store, collect, render_channels

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    store = Store(str(folder))
    try:
        collect(render_channels(model, [(layer, c) for layer, cs in layers.items() for c in cs], settings, store))
        yield store
    finally:
        store.close()
        torch.set_num_threads(before)
