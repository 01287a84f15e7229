"""Dataset exemplars on the tiny model: the lists against an independent brute force, the boxes against
the activation map, shards against one pass, a scan killed (by an exception, and by SIGKILL in a subprocess) resuming,
junk files skipped and counted."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from featviz_core import FeatvizError, Store
from featviz_core.analysis.scan import scan_folder, scan_key
from featviz_core.cli.main import main
from featviz_core.inputs.imagefolder import list_images, open_image
from tests.conftest import count_forwards
from tests.exemplar_fixtures import JUNK, READABLE, build_folder
from tests.tiny_model import build

LAYERS = ["relu1", "relu3"]
MEAN, STD = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_folder(tmp_path_factory.mktemp("exemplars"))


def final(events):
    *_, last = events
    return last.result


def _independent_input(path) -> tuple[torch.Tensor, tuple[float, float, float]]:
    """The test's own resize-and-centre-crop to 64 px, and (scale, left, top) to map back."""
    img = Image.open(path).convert("RGB")
    scale = 64 / min(img.size)
    w, h = max(64, round(img.width * scale)), max(64, round(img.height * scale))
    left, top = (w - 64) // 2, (h - 64) // 2
    arr = np.asarray(img.resize((w, h), Image.Resampling.BILINEAR).crop((left, top, left + 64, top + 64)))
    x = (torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float() / 255 - MEAN) / STD
    return x, (img.width / w, left, top)


@pytest.fixture(scope="module")
def brute_force(folder):
    """Every readable image's full activation maps, from a freshly built net and plain forward hooks."""
    net, maps = build(3).eval(), {}
    seen = {}
    net.relu1.register_forward_hook(lambda m, i, o: seen.__setitem__("relu1", o))
    net.relu3.register_forward_hook(lambda m, i, o: seen.__setitem__("relu3", o))
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        try:
            x, mapping = _independent_input(path)
        except OSError:
            continue
        with torch.no_grad():
            net(x)
        maps[path.relative_to(folder).as_posix()] = ({k: v[0].clone() for k, v in seen.items()}, mapping)
    assert len(maps) == READABLE
    return maps


def test_top1_of_each_channel_is_the_brute_force_argmax_and_its_box_holds_the_peak(tiny, folder, brute_force,
                                                                                   single_thread):
    doc = final(scan_folder(tiny, str(folder), LAYERS, 3, None, shard_size=5, batch=4))
    assert doc["images"] == READABLE
    for layer in LAYERS:
        for channel in (0, 3, 7):
            peaks = {image: float(m[layer][channel].max()) for image, (m, _) in brute_force.items()}
            best = max(peaks, key=peaks.get)
            top = doc["layers"][layer][str(channel)]
            assert [e["image"] for e in top] == sorted(peaks, key=peaks.get, reverse=True)[:3]
            assert top[0]["image"] == best and top[0]["activation"] == pytest.approx(peaks[best], rel=1e-4)
            # The box: in the original photo, around the unit where the map peaks, and local.
            act_map = brute_force[best][0][layer][channel]
            row, col = divmod(int(act_map.argmax()), act_map.shape[1])
            stride = 64 / act_map.shape[1]
            scale, left, top_px = brute_force[best][1]
            x, y = ((col + 0.5) * stride + left) * scale, ((row + 0.5) * stride + top_px) * scale
            x0, y0, x1, y1 = top[0]["box"]
            assert x0 <= x <= x1 and y0 <= y <= y1, (layer, channel, (x, y), top[0]["box"])
            width, height = Image.open(folder / best).size
            assert (x1 - x0) * (y1 - y0) < 0.25 * width * height  # a crop, not the whole photo


def test_shards_merged_give_the_lists_of_one_pass(tiny, folder, single_thread):
    one = final(scan_folder(tiny, str(folder), LAYERS, 4, None, shard_size=1000, batch=16))
    many = final(scan_folder(tiny, str(folder), LAYERS, 4, None, shard_size=3, batch=2))
    assert_same_lists(one, many)


def assert_same_lists(a: dict, b: dict) -> None:
    """The same images and boxes in the same order; activations equal up to batch-composition rounding."""
    assert a["layers"].keys() == b["layers"].keys()
    for layer, channels in a["layers"].items():
        assert channels.keys() == b["layers"][layer].keys()
        for channel, entries in channels.items():
            other = b["layers"][layer][channel]
            assert [(e["image"], e["box"]) for e in entries] == [(e["image"], e["box"]) for e in other]
            assert [e["activation"] for e in entries] == pytest.approx([e["activation"] for e in other], rel=1e-5)


def test_a_killed_scan_resumes_without_rescanning_finished_shards(tiny, folder, store, single_thread):
    args = (tiny, str(folder), LAYERS, 3, store)
    events = scan_folder(*args, shard_size=4, batch=8)  # 20 listed files: 5 shards, one pass each
    with pytest.raises(KeyboardInterrupt):
        for event in events:
            if len(event.shards) and event.done == 8:
                raise KeyboardInterrupt  # killed after two shards were stored
    with count_forwards(tiny.module) as passes:
        resumed = list(scan_folder(*args, shard_size=4, batch=8))
    assert resumed[0].resumed == 8 and resumed[0].done == 8
    # Only the three unfinished shards ran (a full scan makes 5 passes); then one receptive-field
    # probe per layer, measured once and kept in the store.
    assert resumed[-1].forwards == 3 and len(passes) == 3 + len(LAYERS)
    with count_forwards(tiny.module) as passes:
        uninterrupted = final(scan_folder(tiny, str(folder), LAYERS, 3, None, shard_size=4, batch=8))
    assert len(passes) == 5 + len(LAYERS)
    assert resumed[-1].result == uninterrupted
    with count_forwards(tiny.module) as passes:  # finished: read back whole, no forward pass
        assert final(scan_folder(*args, shard_size=4, batch=8)) == resumed[-1].result
    assert not passes


def test_a_damaged_stored_shard_is_scanned_again(tiny, folder, store, single_thread):
    """A stored shard not of the request's shape (a layer missing, a channel list short) runs again
    through the driver instead of failing the merge; the whole shards are read back."""
    args = (tiny, str(folder), LAYERS, 3, store)
    whole = final(scan_folder(*args, shard_size=4, batch=8))
    listing = list_images(str(folder))
    key = scan_key(tiny, LAYERS, 3, listing, 4)
    store._cache.delete(f"json:exemplars:result:{key}")  # keep the shards, not the merged result
    damaged = store.get_json(f"exemplars:shard:{key}:1")
    store.put_json(f"exemplars:shard:{key}:1", {**damaged, "layers": {"relu1": damaged["layers"]["relu1"]}})
    short = store.get_json(f"exemplars:shard:{key}:3")
    store.put_json(f"exemplars:shard:{key}:3", {**short, "layers": {**short["layers"], "relu3": []}})
    with count_forwards(tiny.module) as passes:
        events = list(scan_folder(*args, shard_size=4, batch=8))
    assert events[0].resumed == 12 and sorted(n for e in events for n in e.shards) == [1, 3]
    assert events[-1].forwards == 2 and len(passes) == 2
    assert_same_lists(events[-1].result, whole)
    assert store.get_json(f"exemplars:shard:{key}:1")["layers"].keys() == set(LAYERS)


def test_a_broken_scan_is_said_to_visitors_without_the_server_path(tmp_path, monkeypatch, caplog):
    import logging

    from featviz_core.analysis.exemplar_files import read_scan
    from featviz_ui import exemplars as ui

    missing, broken = tmp_path / "nothing", tmp_path / "broken"
    broken.mkdir()
    (broken / "exemplars.json").write_text('{"model": 1}')
    monkeypatch.setattr(sys, "argv", ["app.py", "--exemplars", str(missing), "--exemplars", str(broken)])
    with caplog.at_level(logging.WARNING, logger="featviz_ui.exemplars"):
        said = [doc for _, doc in ui._scans()]
    assert said[0].startswith("No exemplars.json in the server's exemplar folder 1 of 2: run")
    assert said[1] == ("exemplars.json in the server's exemplar folder 2 of 2 is not a featviz exemplar scan "
                       "(ValueError).")
    assert not [s for s in said if str(tmp_path) in s]
    assert str(missing) in caplog.text and str(broken) in caplog.text  # the server's log keeps the paths
    with pytest.raises(FeatvizError, match=re.escape(repr(str(missing)))):  # the CLI's user names their own folder
        read_scan(str(missing))


def test_unreadable_and_foreign_files_are_skipped_and_counted(tiny, folder, single_thread):
    doc = final(scan_folder(tiny, str(folder), ["relu3"], 2, None, shard_size=6))
    assert doc["skipped"] == JUNK and doc["images"] == READABLE
    listed = {e["image"] for entries in doc["layers"]["relu3"].values() for e in entries}
    assert not any(name.startswith(("escape", "linked_dir", "broken", "set_a/truncated")) for name in listed)


def test_pixel_cap_refuses_a_large_image_before_decoding(tmp_path):
    Image.new("RGB", (300, 200)).save(tmp_path / "big.png")
    with pytest.raises(FeatvizError, match="too large"):
        open_image(str(tmp_path / "big.png"), max_pixels=300 * 200 - 1)
    assert open_image(str(tmp_path / "big.png"), max_pixels=300 * 200).size == (300, 200)


def test_cli_writes_exemplars_json_and_crops(tiny, folder, tmp_path, capsys, single_thread):
    out = tmp_path / "ex"
    code = main(["exemplars", "--model", "tests.tiny_model:make", "--images", str(folder), "--layers", "relu1,relu3",
                 "--top", "2", "--out", str(out), "--cache", str(tmp_path / "cache"), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "exemplars.json").read_text())
    assert set(doc["layers"]) == {"relu1", "relu3"} and len(doc["layers"]["relu3"]) == 16
    entry = doc["layers"]["relu3"]["5"][1]
    x0, y0, x1, y1 = entry["box"]
    crop = Image.open(out / "crops" / "relu3" / "5_1.png")
    assert crop.size == (x1 - x0, y1 - y0)  # the receptive-field crop of that photo
    original = Image.open(folder / entry["image"]).convert("RGB")
    assert np.array_equal(np.asarray(crop), np.asarray(original.crop((x0, y0, x1, y1))))
    whole = np.asarray(Image.open(out / "whole" / "relu3" / "5_1.jpg")).astype(int)
    photo = Image.open(folder / entry["image"])
    assert max(whole.shape[:2]) <= 256
    assert whole.shape[1] / whole.shape[0] == pytest.approx(photo.width / photo.height, abs=0.02)
    scale = whole.shape[1] / photo.width  # the crop outlined: its top-left corner is orange
    corner = whole[round(y0 * scale) + 1, round(x0 * scale) + 1]
    assert abs(corner - np.array([255, 64, 0])).max() < 60, corner
    assert "scanned 18 images" in capsys.readouterr().out


@pytest.mark.parametrize("change, message", [
    ({"--images": "nowhere"}, "does not exist or is not a folder"),
    ({"--layers": "relu9"}, "Unknown layer 'relu9'.*relu3"),
    ({"--layers": "logits"}, "no spatial map"),
    ({"--top": "0"}, "--top 0 is out of range"),
    ({"--shard-size": "-3"}, "--shard-size -3 is out of range"),
    ({"--images": "EMPTY"}, r"holds no JPEG, PNG or WebP files \(1 not an image file\)"),
])
def test_cli_bad_input_exits_2_with_one_clear_line(folder, tmp_path, capsys, change, message):
    args = {"--model": "tests.tiny_model:make", "--images": str(folder), "--layers": "relu3",
            "--out": str(tmp_path / "ex"), "--device": "cpu", "--no-cache": None, **change}
    if args["--images"] == "EMPTY":
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "readme.txt").write_text("no photos here")
        args["--images"] = str(tmp_path / "empty")
    argv = ["exemplars"] + [x for k, v in args.items() for x in ((k,) if v is None else (k, v))]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and re.search(message, err[-1]) and "Traceback" not in "".join(err)
    assert not os.path.exists(tmp_path / "ex" / "exemplars.json")


def test_ties_go_to_the_first_image_and_the_first_position(tiny, tmp_path, single_thread):
    photo = np.full((80, 80, 3), 128, dtype=np.uint8)  # flat: interior units of a map are equal
    for name in ("c.png", "a.png", "b.png"):
        Image.fromarray(photo).save(tmp_path / name)
    for shard_size in (1, 3):
        doc = final(scan_folder(tiny, str(tmp_path), ["relu3"], 3, None, shard_size=shard_size, batch=1))
        for channel, entries in doc["layers"]["relu3"].items():
            assert [e["image"] for e in entries] == ["a.png", "b.png", "c.png"]
            x, _ = _independent_input(tmp_path / "a.png")
            net = build(3).eval()
            with torch.no_grad():
                act = net.relu3(net.conv3(net.relu2(net.conv2(net.relu1(net.conv1(x))))))[0, int(channel)]
            peak = torch.nonzero(act == act.max())[0]
            first = int(peak[0]) * act.shape[1] + int(peak[1])
            assert divmod(first, act.shape[1]) == tuple(entries[0]["unit"])


def test_render_manifest_compares_each_picture_with_its_best_photo(folder, tmp_path, capsys, single_thread):
    ex, out = tmp_path / "ex", tmp_path / "out"
    assert main(["exemplars", "--model", "tests.tiny_model:make", "--images", str(folder), "--layers", "relu3",
                 "--top", "2", "--out", str(ex), "--no-cache", "--device", "cpu"]) == 0
    render = ["render", "--layer", "relu3", "--channels", "1,4", "--size", "32", "--steps", "6", "--no-cache",
              "--no-check", "--device", "cpu", "--out", str(out), "--exemplars", str(ex)]
    assert main(render[:1] + ["--model", "tests.tiny_model:make_other_seed"] + render[1:]) == 2
    assert "was made with tests.tiny_model:make" in capsys.readouterr().err
    assert main(render[:1] + ["--model", "tests.tiny_model:make"] + render[1:]) == 0
    doc = json.loads((ex / "exemplars.json").read_text())
    net = build(3).eval()
    for item in json.loads((out / "manifest.json").read_text())["items"]:
        x, _ = _independent_input(out / item["png"])  # the picture fitted to the 64 px input
        with torch.no_grad():
            peak = float(net.relu3(net.conv3(net.relu2(net.conv2(net.relu1(net.conv1(x))))))[0, item["channel"]].max())
        best = doc["layers"]["relu3"][str(item["channel"])][0]
        assert item["exemplar_top1"] == best["image"]
        assert item["exemplar_ratio"] == pytest.approx(peak / best["activation"], rel=1e-3)


def test_a_scan_killed_with_sigkill_resumes_from_its_stored_shards(tiny, tmp_path, single_thread):
    photos = tmp_path / "noise"
    photos.mkdir()
    rng = np.random.default_rng(1)
    for i in range(400):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(photos / f"{i:03d}.png")
    cache = tmp_path / "cache"
    argv = [sys.executable, "-m", "featviz_core", "exemplars", "--model", "tests.tiny_model:make",
            "--images", str(photos), "--layers", "relu3", "--top", "3", "--out", str(tmp_path / "ex"),
            "--cache", str(cache), "--device", "cpu", "--shard-size", "20", "--batch-size", "4"]
    key = scan_key(tiny, ["relu3"], 3, list_images(str(photos)), 20)
    proc = subprocess.Popen(argv, cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    store = Store(str(cache))
    try:
        deadline = time.time() + 120
        while not all(f"json:exemplars:shard:{key}:{n}" in store for n in (0, 1)):
            assert proc.poll() is None and time.time() < deadline, "the scan ended before two shards were stored"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stored = sum(f"json:exemplars:shard:{key}:{n}" in store for n in range(20))
        assert 2 <= stored < 20 and not (tmp_path / "ex" / "exemplars.json").exists()
        with count_forwards(tiny.module) as passes:
            events = list(scan_folder(tiny, str(photos), ["relu3"], 3, store, shard_size=20, batch=4))
        assert events[0].resumed == 20 * stored
        assert events[-1].forwards == 5 * (20 - stored)
        assert len(passes) == 5 * (20 - stored) + 1  # + receptive-field probe
        one_pass = final(scan_folder(tiny, str(photos), ["relu3"], 3, None, shard_size=400, batch=4))
        assert_same_lists(events[-1].result, one_pass)
    finally:
        proc.kill()
        store.close()
