"""Code moves keep every picture: renders, dreams and an atlas hash the same as before the move."""
import json
from pathlib import Path

import pytest

from tests.picture_hashes import all_hashes

pytestmark = pytest.mark.real_model


def test_pictures_curves_and_keys_are_bit_identical(tmp_path, single_thread):
    recorded = json.loads((Path(__file__).parent / "data" / "picture_hashes.json").read_text())
    now = all_hashes(str(tmp_path))
    changed = sorted(name for name in recorded if now.get(name) != recorded[name])
    assert not changed and set(now) == set(recorded), f"pictures changed: {changed}"
