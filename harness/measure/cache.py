"""The measurement cache: arrays plus JSON metadata on disk, addressed by a content key.

A measurement is a pure function of its key (measurement name and version, parameters,
subject identity, dtype, eval-data fingerprint, seed — the caller builds the key). Each
entry is a directory ``<root>/<name>/<digest>/`` holding ``arrays.npz`` and ``meta.json``
(the key, the sha256 of ``arrays.npz``, the creation time, the compute seconds and the
measurement's own metadata). Entries are written into a temporary directory beside the
final one and renamed into place (atomic), under one file lock per key, so concurrent
workers compute each entry once: the others wait for the lock and then read. Every read
checks the hash; a corrupt or partial entry is logged and recomputed.

The root may also be an fsspec URL (``s3://bucket/prefix``, ``gs://…``; ``file://`` is a local
path) so that jobs on several machines share measurements: see ``harness.measure.object_cache``
for how entries are written there without renames or locks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Mapping

from filelock import FileLock

from harness.measure.entries import (  # noqa: F401 (ARRAYS_FILE, META_FILE, key_digest: the cache's public names)
    ARRAYS_FILE,
    META_FILE,
    CacheEntry,
    Compute,
    CorruptEntry,
    EntryInfo,
    NAME_RE,
    canonical_key,
    check_name,
    compute_entry,
    decode_entry,
    key_digest,
    sha256_bytes,
)
from harness.measure.object_cache import ObjectCache

log = logging.getLogger(__name__)

_TMP_PREFIX = ".tmp-"

_DIGEST_RE = re.compile(r"^(?:\.tmp-)?([0-9a-f]{64})(?:-[0-9a-f]{32}|\.lock)?$")


def default_root() -> Path | str:
    """``$RARE_CACHE_DIR`` (a directory or an fsspec URL) or ``~/.cache/rare-token-claims/measurements``."""
    env = os.environ.get("RARE_CACHE_DIR")
    if not env:
        return Path.home() / ".cache" / "rare-token-claims" / "measurements"
    return env if is_remote(env) else local_path(env)


def is_remote(root: str | os.PathLike[str]) -> bool:
    """Whether ``root`` is a URL of a remote filesystem (``s3://``, ``gs://``, …; not ``file://``)."""
    scheme, sep, _ = str(root).partition("://")
    return bool(sep) and scheme != "file"


def local_path(root: str | os.PathLike[str]) -> Path:
    """A local directory, given as a path or a ``file://`` URL."""
    text = str(root)
    return Path(text[len("file://"):] if text.startswith("file://") else text)


def _write_file(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


class MeasurementCache:
    """Measurements under ``root``: a local directory or an fsspec URL (default :func:`default_root`).

    ``storage_options`` go to fsspec for a URL root (e.g. ``{"client_kwargs": {"endpoint_url": …}}``).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None,
                 storage_options: Mapping[str, Any] | None = None) -> None:
        root = default_root() if root is None else root
        self.remote = ObjectCache(str(root), storage_options) if is_remote(root) else None
        self.root: Path | str = str(root) if self.remote is not None else local_path(root)

    def _name_dir(self, name: str) -> Path:
        return self.root / check_name(name)

    def _read(self, name: str, digest: str, path: Path, canonical: str) -> CacheEntry:
        """Read and verify an entry; raises FileNotFoundError if absent, CorruptEntry if bad."""
        if not path.is_dir():
            raise FileNotFoundError(path)
        return decode_entry(name, digest, path, (path / META_FILE).read_bytes,
                            lambda record: (path / ARRAYS_FILE).read_bytes(), canonical)

    def get_or_compute(self, name: str, key: Mapping[str, Any], compute: Compute) -> CacheEntry:
        """The entry for ``key`` under measurement ``name``: read from disk, or computed once and stored.

        ``compute()`` returns ``(arrays, meta)``: a dict of name -> numpy array and a dict of
        JSON metadata. Under concurrency on a local root exactly one caller computes; the others
        wait on the key's file lock and read its result (on a URL root see ``ObjectCache``).
        """
        canonical = canonical_key(key)
        digest = sha256_bytes(canonical.encode())
        if self.remote is not None:
            return self.remote.get_or_compute(check_name(name), digest, canonical, compute)
        name_dir = self._name_dir(name)
        path = name_dir / digest
        with contextlib.suppress(FileNotFoundError, CorruptEntry):
            return self._read(name, digest, path, canonical)
        name_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(name_dir / f"{digest}.lock")):
            for stale in name_dir.glob(f"{_TMP_PREFIX}{digest}-*"):
                shutil.rmtree(stale, ignore_errors=True)  # left by a writer that died holding this lock
            try:
                return self._read(name, digest, path, canonical)
            except FileNotFoundError:
                pass
            except CorruptEntry as err:
                log.warning("measurement cache: entry %s/%s is corrupt (%s); recomputing", name, digest, err)
                shutil.rmtree(path)
            return self._compute_and_store(name, digest, path, json.loads(canonical), compute)

    def _compute_and_store(
        self, name: str, digest: str, path: Path, key: dict[str, Any], compute: Compute
    ) -> CacheEntry:
        encoded = compute_entry(name, digest, path, key, compute)
        tmp = path.parent / f"{_TMP_PREFIX}{digest}-{uuid.uuid4().hex}"
        tmp.mkdir()
        _write_file(tmp / ARRAYS_FILE, encoded.data)
        _write_file(tmp / META_FILE, encoded.record_bytes)
        os.rename(tmp, path)
        return encoded.entry

    def entries(self, name: str | None = None) -> list[EntryInfo]:
        """Every readable entry (all measurements, or one), sorted by name and creation time."""
        if self.remote is not None:
            return self.remote.entries(name)
        found = []
        for name_dir in self._name_dirs(name):
            for path in name_dir.glob("*/" + META_FILE):
                if path.parent.name.startswith(_TMP_PREFIX):
                    continue
                try:
                    record = json.loads(path.read_text())
                    size = sum(p.stat().st_size for p in path.parent.iterdir())
                    found.append(EntryInfo(name_dir.name, path.parent.name, path.parent, record["created"],
                                           record["compute_seconds"], size))
                except (OSError, ValueError, KeyError) as err:
                    log.warning("measurement cache: skipping unreadable entry %s (%s)", path.parent, err)
        return sorted(found, key=lambda e: (e.name, e.created, e.digest))

    def _name_dirs(self, name: str | None) -> list[Path]:
        if name is not None:
            return [self._name_dir(name)]
        return sorted(p for p in self.root.glob("*") if p.is_dir() and NAME_RE.match(p.name))

    def clear(self, name: str | None = None) -> int:
        """Delete the entries, locks and leftover temporary directories (all measurements, or one).

        Only files the cache itself names (``<digest>``, ``<digest>.lock``, ``.tmp-<digest>-…``)
        are deleted. Returns the number of complete entries deleted. Not to be run while
        workers write.
        """
        if self.remote is not None:
            return self.remote.clear(name)
        count = len(self.entries(name))
        for name_dir in self._name_dirs(name):
            for path in name_dir.glob("*"):
                if not _DIGEST_RE.match(path.name):
                    continue
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                name_dir.rmdir()
        return count

