"""The one place for files visitors upload (weights now, photos later): content-addressed, atomic,
bounded, and never named by a server path in what a visitor sees.

A file is stored as `<directory>/<kind>/<id><suffix>`, its id the first 20 hex digits of its sha256, so
the same content always gets the same id and a link can name it. It is written under a unique
temporary name and renamed into place, so visitors uploading the same file at once each write their
own temporary file and the last rename wins with identical bytes. Each file's modification time is
its last use (`put` and `path` touch it); past the quota (bytes and files over every kind) the least
recently used files go. Nothing else deletes an upload: a link or model that does not fit it only
says so.

Uploads live beside the rendered pictures and share FEATVIZ_CACHE_GB with them (see `cache_budget`).
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile

from .. import config
from ..errors import FeatvizError, megabytes, unknown_choice
from .repair import PART, remove_stale_parts

UPLOAD_KINDS = ("weights", "photo")
_SUFFIX = {"weights": ".pt", "photo": ".img"}
_ID = re.compile(r"[0-9a-f]{20}")
UPLOAD_SHARE = 0.25  # of FEATVIZ_CACHE_GB, unless FEATVIZ_UPLOADS_GB says otherwise (at most half)
MAX_FILES = 100
HOSTED_MAX_FILES = 20
HOSTED_SHARE = 0.5  # a hosted server keeps half the upload share (and fewer files)


def cache_budget() -> tuple[int, int]:
    """(bytes for rendered pictures, bytes for uploads): together FEATVIZ_CACHE_GB (default 2).
    Uploads get FEATVIZ_UPLOADS_GB, by default a quarter of it, never more than half."""
    total = config.cache_gb() * 2**30
    uploads = min(config.uploads_gb(total * UPLOAD_SHARE / 2**30) * 2**30, total / 2)
    return int(total - uploads), int(uploads)


def upload_quota(hosted: bool) -> tuple[int, int]:
    """(max total bytes, max files) of uploads; a hosted server keeps half the bytes and fewer files."""
    upload_bytes = cache_budget()[1]
    if hosted:
        return int(upload_bytes * HOSTED_SHARE), config.uploads_max_files(HOSTED_MAX_FILES)
    return upload_bytes, config.uploads_max_files(MAX_FILES)


class UploadStore:
    """Uploaded files under `directory`, at most `max_total_bytes` and `max_files` in all."""

    def __init__(self, directory: str, max_total_bytes: int, max_files: int):
        self.directory = directory
        self.max_total_bytes = max_total_bytes
        self.max_files = max_files

    def _file(self, upload_id: str, kind: str) -> str:
        return os.path.join(self.directory, kind, upload_id + _SUFFIX[kind])

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in UPLOAD_KINDS:
            raise unknown_choice("upload kind", kind, UPLOAD_KINDS)

    def put(self, data: bytes, kind: str) -> str:
        """Keep `data`; return its content id. Raises FeatvizError (too large, disk trouble)."""
        self._check_kind(kind)
        if len(data) > self.max_total_bytes:
            raise FeatvizError(f"The file is {megabytes(len(data))}; this server keeps uploads of at most "
                               f"{megabytes(self.max_total_bytes)}.")
        upload_id = hashlib.sha256(data).hexdigest()[:20]
        target = self._file(upload_id, kind)
        try:
            if not _touch(target):
                _write_atomically(target, data)
        except OSError as exc:  # disk full, read-only volume: say what, not where
            why = exc.strerror or type(exc).__name__
            raise FeatvizError(f"This server could not store the upload ({why}).") from None
        self.clean(keep=target)
        return upload_id

    def path(self, upload_id: str, kind: str) -> str:
        """The file a link's id names, marked as just used. FeatvizError for a malformed or unknown id."""
        self._check_kind(kind)
        if not isinstance(upload_id, str) or not _ID.fullmatch(upload_id):
            raise FeatvizError(f"The {kind} id in the link is malformed (an upload's id is 20 characters 0-9 and a-f): "
                               "upload the file again.")
        target = self._file(upload_id, kind)
        if not _touch(target):
            raise FeatvizError(f"The uploaded {kind} file {upload_id} is not on this server (any more): "
                               "upload the file again.")
        return target

    def files(self) -> list[tuple[float, int, str]]:
        """(last use, bytes, path) of every stored upload, least recently used first."""
        found = []
        for kind in UPLOAD_KINDS:
            folder = os.path.join(self.directory, kind)
            for entry in _scan(folder):
                if entry.name.endswith(_SUFFIX[kind]) and not entry.name.startswith("."):
                    try:
                        info = entry.stat()
                    except FileNotFoundError:  # removed by another session's cleanup meanwhile
                        continue
                    found.append((info.st_mtime, info.st_size, entry.path))
        return sorted(found)

    def clean(self, keep: str | None = None) -> list[str]:
        """Removes least-recently-used uploads past the quota (never `keep`) and temporary files of
        killed writes; returns the removed uploads' ids."""
        remove_stale_parts(self.directory)
        files = [f for f in self.files() if f[2] != keep]
        kept_bytes = os.path.getsize(keep) if keep and os.path.exists(keep) else 0
        total, count = sum(f[1] for f in files) + kept_bytes, len(files) + (1 if kept_bytes else 0)
        removed = []
        for _, size, path in files:
            if total <= self.max_total_bytes and count <= self.max_files:
                break
            _remove(path)
            total, count = total - size, count - 1
            removed.append(os.path.basename(path).split(".")[0])
        return removed


def _scan(folder: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except FileNotFoundError:
        return []


def _touch(path: str) -> bool:
    """Marks an existing file as just used; False when there is none."""
    try:
        os.utime(path)
        return True
    except FileNotFoundError:
        return False


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:  # another session cleaned it first
        pass


def _write_atomically(target: str, data: bytes) -> None:
    """A temporary file of its own (so concurrent writers never share one), then one rename."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fd, part = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".", suffix=PART)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(part, target)
    except BaseException:
        _remove(part)
        raise
