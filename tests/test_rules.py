"""Each rule lives in one place, and every entry point goes through it: the command line, the library
and the dashboard say the SAME words for the same bad channel list, the same bad logit request and the
same bad size. Each message is computed once from the rule's home (featviz_core.spec) and looked for
verbatim in what each entry point shows."""
from __future__ import annotations

import pytest
import torch

from featviz_core import FeatvizError, RenderSettings, cli, collect, load_model, render_channels
from featviz_core.spec import SIZE_RANGE, check_objective_layers, check_whole, parse_channels
from featviz_core.spec.dream import DREAM_SIZE_RANGE, DreamSettings
from featviz_ui import rendering
from tests.app_fixtures import FAST, cache_dir, open_app, texts  # noqa: F401

pytestmark = pytest.mark.usefixtures("single_thread")
LAYER, COUNT = "blocks.1", 24  # lite0's blocks.1, the dashboard's default model and early layer


def rule_message(check, *args) -> str:
    with pytest.raises(FeatvizError) as caught:
        check(*args)
    return str(caught.value)


@pytest.fixture(scope="module")
def lite0():
    return load_model("lite0", device="cpu")


@pytest.fixture
def no_renders(monkeypatch):
    """The dashboard draws its view but renders nothing (what is checked comes before any render)."""
    monkeypatch.setattr(rendering, "_render_missing", lambda *args, **kwargs: None)


def cli_error(tmp_path, capsys, *args: str) -> str:
    """The one line `featviz render ...` prints for bad input (exit 2), without 'error: '."""
    code = cli.main(["render", "--model", "lite0", "--device", "cpu", "--out", str(tmp_path / "out"), "--no-cache",
                     "--size", "64", "--steps", "1", *args])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    return err[len("error: "):].rstrip("\n")


def dashboard_says(query: dict) -> str:
    at = open_app({**FAST, **query})
    return texts(list(at.error) + list(at.warning) + list(at.info))


def test_one_channel_grammar(tmp_path, capsys, lite0, cache_dir, no_renders):  # noqa: F811
    message = rule_message(parse_channels, "0-99", COUNT, 0, LAYER)
    assert message == "Channel 99 is out of range of layer 'blocks.1': the layer has 24 channels (0-23)."
    assert cli_error(tmp_path, capsys, "--layer", LAYER, "--channels", "0-99") == message
    assert rule_message(parse_channels, "0-99", lite0.layers[LAYER].channels, 0, LAYER) == message  # the library
    assert message in dashboard_says({"layers": [LAYER], f"ch.{LAYER}": "0-99"})
    # Every form is read the same everywhere, the seeded draw included (a shared link shows the same channels).
    assert parse_channels("random 5", COUNT, 1, LAYER) == parse_channels("random 5", COUNT, 1, LAYER)
    assert parse_channels("all", 3) == [0, 1, 2] and parse_channels("first 2", 3) == [0, 1]


def test_one_logit_rule(tmp_path, capsys, lite0, cache_dir, no_renders):  # noqa: F811
    message = rule_message(check_objective_layers, "logit", [LAYER])
    assert "logit objective needs layer 'logits'" in message and repr(LAYER) in message
    assert cli_error(tmp_path, capsys, "--objective", "logit", "--layer", LAYER) == message
    library = RenderSettings(objective="logit", size=64, steps=1)
    assert rule_message(lambda: collect(render_channels(lite0, [(LAYER, 0)], library))) == message
    assert message in dashboard_says({"objective": "logit", "layers": [LAYER], "ch.logits": "0"})


def test_one_size_rule(tmp_path, capsys, cache_dir, no_renders):  # noqa: F811
    message = rule_message(check_whole, "size", 5000, SIZE_RANGE)
    assert message == "Size 5000 is out of range: choose a whole number from 32 to 1024."
    assert cli_error(tmp_path, capsys, "--layer", LAYER, "--size", "5000") == message
    assert rule_message(RenderSettings, "fourier", 5000) == message
    # A dream's longer side may reach the photo's own (the host's megapixel limit decides): its range is
    # wider, its check and message the same.
    assert rule_message(lambda: DreamSettings(size=20000)) == rule_message(check_whole, "size", 20000, DREAM_SIZE_RANGE)
    assert message in dashboard_says({"size": "5000", "layers": [LAYER], f"ch.{LAYER}": "0"})


def test_one_batch_size_bound(tmp_path, capsys):
    from featviz_core.spec import BATCH_RANGE, check_batch_size

    message = rule_message(check_batch_size, BATCH_RANGE[1] + 1)
    assert cli_error(tmp_path, capsys, "--layer", LAYER, "--batch-size", str(BATCH_RANGE[1] + 1)) == message
    for command in (["atlas", "--out", str(tmp_path / "atlas")], ["dream", "chelsea", "--layer", LAYER]):
        assert cli.main([*command, "--model", "lite0", "--batch-size", str(BATCH_RANGE[1] + 1)]) == 2
        assert capsys.readouterr().err == f"error: {message}\n"


def test_one_config_every_variable_read_when_asked(monkeypatch):
    """featviz_core.config owns every FEATVIZ_* variable: one parser, whose message names the variable
    and its valid range, and every value is read at call time (a changed environment is seen at once)."""
    from featviz_core import config
    from featviz_core.store import cache_budget, default_cache_dir, upload_quota

    for name, read in [(config.WORKERS_ENV, config.render_workers),
                       (config.MAX_QUEUED_ENV, lambda: config.max_queued(3)),
                       (config.UPLOADS_MAX_FILES_ENV, lambda: config.uploads_max_files(20))]:
        monkeypatch.setenv(name, "lots")
        with pytest.raises(FeatvizError, match=rf"^{name}='lots' is not a whole number from \d+ to \d+"):
            read()
        monkeypatch.setenv(name, "3")
        assert read() == 3
    monkeypatch.setenv("FEATVIZ_HOSTED", "1")
    monkeypatch.setenv("FEATVIZ_MAX_SIZE", "2000")
    with pytest.raises(FeatvizError, match=r"FEATVIZ_MAX_SIZE='2000' is not a whole number from 32 to 1024"):
        config.host_limits()
    monkeypatch.setenv("FEATVIZ_MAX_SIZE", "96")
    assert config.host_limits().size == 96
    monkeypatch.setenv("FEATVIZ_CACHE_GB", "zero")
    with pytest.raises(FeatvizError, match="FEATVIZ_CACHE_GB='zero' is not a positive number of gigabytes"):
        cache_budget()
    monkeypatch.setenv("FEATVIZ_CACHE_GB", "1")
    monkeypatch.setenv("FEATVIZ_UPLOADS_MAX_FILES", "0")
    with pytest.raises(FeatvizError, match="FEATVIZ_UPLOADS_MAX_FILES='0'"):
        upload_quota(True)
    monkeypatch.setenv("FEATVIZ_CACHE", "/somewhere/else")
    assert default_cache_dir() == "/somewhere/else"


def test_one_pixel_limit_for_every_image_from_outside(tmp_path, monkeypatch):
    """Uploaded photos and image folders are opened by one opener under one limit, which a host may lower."""
    from PIL import Image

    from featviz_core.inputs import open_image, read_photo

    path = tmp_path / "two_mp.png"
    Image.new("RGB", (2000, 1000)).save(path)
    assert read_photo(path.read_bytes()).shape == (1000, 2000, 3) and open_image(str(path)).size == (2000, 1000)
    monkeypatch.setenv("FEATVIZ_MAX_MEGAPIXELS", "1")
    with pytest.raises(FeatvizError, match="too large .*up to 1 megapixels"):
        read_photo(path.read_bytes())
    with pytest.raises(FeatvizError, match="too large"):
        open_image(str(path))
    monkeypatch.setenv("FEATVIZ_MAX_MEGAPIXELS", "41")  # a host may lower the limit, never raise it
    with pytest.raises(FeatvizError, match="FEATVIZ_MAX_MEGAPIXELS='41' is not a whole number from 1 to 40"):
        read_photo(path.read_bytes())


def test_every_upload_architecture_reads_the_uploaded_state_dict(tmp_path):
    """The dashboard offers an upload of weights for each of UPLOAD_ARCHITECTURES: each must load the file
    it is given, not its packaged weights. A state dict of another network is refused, naming the model."""
    from featviz_core import DEFAULT_MODEL
    from featviz_ui.config import UPLOAD_ARCHITECTURES
    from tests.tiny_model import build

    assert DEFAULT_MODEL in UPLOAD_ARCHITECTURES
    foreign = tmp_path / "tiny.pt"
    torch.save(build(3).state_dict(), foreign)
    for name in UPLOAD_ARCHITECTURES:
        with pytest.raises(FeatvizError, match=r"^Weights do not fit .*missing .*unexpected"):
            load_model(name, weights=str(foreign), device="cpu")
