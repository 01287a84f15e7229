"""Uploaded weights in the dashboard: a link or model they do not fit says why and keeps the file."""
from __future__ import annotations

import os

import torch

from featviz_ui.models import current_uploads
from tests.app_fixtures import TWO_BY_TWO, TWO_BY_TWO_LABELS, captions, open_app, texts, warm_cache, warm_cache_dir  # noqa: F401


def _stored(data: bytes) -> tuple[str, str]:
    uploads = current_uploads()
    upload_id = uploads.put(data, "weights")
    return upload_id, uploads.path(upload_id, "weights")


def test_weights_that_do_not_fit_the_model_are_reported_kept_and_stay_in_the_link(warm_cache, tmp_path):
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")  # a state dict of another network
    upload_id, path = _stored((tmp_path / "other.pt").read_bytes())
    at = open_app({**TWO_BY_TWO, "weights": upload_id})
    warning = texts(at.warning)
    assert "do not fit lite0" in warning and "missing" in warning and "stays on this server" in warning
    assert str(warm_cache) not in warning and "/" not in warning.replace("\\/", "")  # no server path
    assert captions(at) == TWO_BY_TWO_LABELS  # the packaged weights still show the view
    assert os.path.exists(path) and at.query_params["weights"] == upload_id
    at.run()  # a rerun neither deletes nor re-reads it
    assert os.path.exists(path) and "do not fit lite0" in texts(at.warning)


def test_a_file_that_is_no_state_dict_is_reported_and_kept(warm_cache):
    upload_id, path = _stored(b"someone's notes, not weights")
    at = open_app({**TWO_BY_TWO, "weights": upload_id})
    assert "not a readable PyTorch state dict" in texts(at.warning)
    assert os.path.exists(path) and captions(at) == TWO_BY_TWO_LABELS
