"""Weight files from anyone: a deflate bomb is refused before torch.load inflates it (the process's
peak memory barely moves), oversized files are refused for the architecture they are for, and the
messages name the file, never its folder."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from featviz_core import FeatvizError
from featviz_core.models.weights import load_state_dict_file, weights_limit

from .weight_bombs import write_deflate_bomb

ROOT = Path(__file__).resolve().parent.parent
TINY = "tests.tiny_model:make"
BOMB_MB = 256  # about 260 kB on disk
GROWTH_BOUND_MB = 48

_MEASURE = f"""
import resource, sys
from featviz_core import FeatvizError, load_model
load_model({TINY!r}, device="cpu")  # imports and first allocations out of the way
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_model({TINY!r}, device="cpu", weights=sys.argv[1])
    print("LOADED")
except FeatvizError as exc:
    print("REFUSED", exc)
print("GROWTH_MB", (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


@pytest.mark.usefixtures("single_thread")
def test_a_deflate_bomb_is_refused_without_inflating_it(tmp_path):
    bomb = tmp_path / "bomb.pt"
    write_deflate_bomb(bomb, BOMB_MB)
    assert os.path.getsize(bomb) < 2**20
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", _MEASURE, str(bomb)], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)
    lines = dict(line.split(" ", 1) for line in run.stdout.splitlines())
    assert "REFUSED" in lines, run.stdout + run.stderr
    assert "compressed entries" in lines["REFUSED"] and str(tmp_path) not in lines["REFUSED"]
    assert float(lines["GROWTH_MB"]) < GROWTH_BOUND_MB  # torch.load alone grew it by the bomb's 256 MB


def test_the_bomb_is_a_real_one(tmp_path):
    """The crafted file is what torch.load reads as a state dict: only the check stops it."""
    bomb = tmp_path / "bomb.pt"
    write_deflate_bomb(bomb, 4)
    assert torch.load(bomb, weights_only=True)["conv1.weight"].numel() == 2**20


def test_a_file_bigger_than_the_architecture_can_use_is_refused(tmp_path, tiny):
    state = {k: v.clone() for k, v in tiny.module.state_dict().items()}
    limit = weights_limit(torch.nn.Linear(1000, 1000))  # about 12 MB
    torch.save({**state, "padding": torch.zeros(4 * 2**20)}, tmp_path / "big.pt")  # 16 MB, stored
    with pytest.raises(FeatvizError, match="unpacks to 16.0 MB.*more than this model can use") as err:
        load_state_dict_file(str(tmp_path / "big.pt"), torch.nn.Linear(1000, 1000))
    assert str(tmp_path) not in str(err.value) and limit < 16 * 2**20
    torch.save({"weight": torch.zeros(1000, 1000), "bias": torch.zeros(1000)}, tmp_path / "fits.pt")
    assert set(load_state_dict_file(str(tmp_path / "fits.pt"), torch.nn.Linear(1000, 1000))) == {"weight", "bias"}


def test_an_old_style_file_is_bounded_by_its_size(tmp_path):
    torch.save({"weight": torch.zeros(2000, 1000)}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(FeatvizError, match="more than this model can use"):
        load_state_dict_file(str(tmp_path / "old.pt"), torch.nn.Linear(100, 100))
    assert load_state_dict_file(str(tmp_path / "old.pt"), torch.nn.Linear(1000, 2000))["weight"].shape == (2000, 1000)


def test_a_damaged_zip_is_a_clear_message(tmp_path):
    torch.save({"weight": torch.zeros(10)}, tmp_path / "w.pt")
    data = (tmp_path / "w.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(FeatvizError, match="'cut.pt' is not a readable PyTorch state dict") as err:
        load_state_dict_file(str(tmp_path / "cut.pt"), torch.nn.Linear(10, 1))
    assert str(tmp_path) not in str(err.value)
