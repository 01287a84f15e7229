"""Hostile weight files for tests: a torch.save-shaped zip whose one tensor entry is deflated, so a few
hundred kilobytes on disk inflate to `mbytes` megabytes in torch.load."""
from __future__ import annotations

import collections
import io
import pickle
import zipfile

import torch


class _Storage:
    """Pickles as torch.save's persistent id of a float storage of `numel` elements."""

    def __init__(self, numel: int):
        self.numel = numel


class _Tensor:
    def __init__(self, numel: int):
        self.numel = numel

    def __reduce__(self):
        args = (_Storage(self.numel), 0, (self.numel,), (1,), False, collections.OrderedDict())
        return torch._utils._rebuild_tensor_v2, args


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", torch.FloatStorage, "0", "cpu", obj.numel)
        return None


def write_deflate_bomb(path, mbytes: int, key: str = "conv1.weight") -> None:
    numel = mbytes * 2**20 // 4
    index = io.BytesIO()
    _Pickler(index, protocol=2).dump({key: _Tensor(numel)})
    chunk = bytes(2**20)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", index.getvalue())
        archive.writestr("archive/byteorder", "little")
        info = zipfile.ZipInfo("archive/data/0")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w") as entry:
            for _ in range(mbytes):
                entry.write(chunk)
        archive.writestr("archive/version", "3\n")
