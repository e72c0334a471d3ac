"""The measurement cache: arrays plus JSON metadata on disk, addressed by a content key.

A measurement is a pure function of its key (measurement name and version, parameters,
subject identity, dtype, eval-data fingerprint, seed — the caller builds the key). Each
entry is a directory ``<root>/<name>/<digest>/`` holding ``arrays.npz`` and ``meta.json``
(the key, the sha256 of ``arrays.npz``, the creation time, the compute seconds and the
measurement's own metadata). Entries are written into a temporary directory beside the
final one and renamed into place (atomic), under one file lock per key, so concurrent
workers compute each entry once: the others wait for the lock and then read. Every read
checks the hash; a corrupt or partial entry is logged and recomputed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import time
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from filelock import FileLock

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ARRAYS_FILE = "arrays.npz"
META_FILE = "meta.json"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TMP_PREFIX = ".tmp-"

_DIGEST_RE = re.compile(r"^(?:\.tmp-)?([0-9a-f]{64})(?:-[0-9a-f]{32}|\.lock)?$")

Compute = Callable[[], tuple[Mapping[str, np.ndarray], Mapping[str, Any]]]


def default_root() -> Path:
    """``$RARE_CACHE_DIR`` or ``~/.cache/rare-token-claims/measurements``."""
    env = os.environ.get("RARE_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "rare-token-claims" / "measurements"


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{what} must be JSON data (str, int, finite float, bool, None, lists, str-keyed dicts): {err}"
        ) from err


def _canonical_key(key: Mapping[str, Any]) -> str:
    if not isinstance(key, Mapping):
        raise ValueError(f"a cache key is a mapping, got {type(key).__name__}")
    return _canonical_json(dict(key), "a cache key")


def key_digest(key: Mapping[str, Any]) -> str:
    """The sha256 (hex) of the key's canonical JSON (sorted keys, no whitespace).

    Raises ValueError if the key holds anything but JSON data (e.g. a numpy scalar or NaN).
    """
    return _sha256_bytes(_canonical_key(key).encode())


@dataclass(frozen=True)
class CacheEntry:
    """One measurement: its arrays, its own metadata and where it came from.

    ``from_cache`` is False when this call computed it; ``compute_seconds`` is the time the
    computation took when it was made.
    """

    name: str
    digest: str
    path: Path
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    key: dict[str, Any]
    created: str
    compute_seconds: float
    from_cache: bool


@dataclass(frozen=True)
class EntryInfo:
    """An entry on disk, for housekeeping (``MeasurementCache.entries``)."""

    name: str
    digest: str
    path: Path
    created: str
    compute_seconds: float
    size_bytes: int


class CorruptEntry(Exception):
    """An entry on disk that does not read back as written (internal to the cache)."""


def _write_file(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _check_arrays(arrays: Any, name: str) -> dict[str, np.ndarray]:
    if not isinstance(arrays, Mapping) or not all(isinstance(k, str) and k for k in arrays):
        raise ValueError(
            f"the compute function for {name!r} must return (arrays, meta), arrays a dict of name -> numpy array"
        )
    bad = [k for k, v in arrays.items() if not isinstance(v, np.ndarray) or v.dtype.hasobject]
    if bad:
        raise ValueError(f"the compute function for {name!r} returned non-numeric arrays {bad}; give numpy arrays")
    return dict(arrays)


class MeasurementCache:
    """Measurements on disk under ``root`` (default :func:`default_root`)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def _name_dir(self, name: str) -> Path:
        if not _NAME_RE.match(name):
            raise ValueError(f"measurement name {name!r} must be letters, digits, '_', '.', '-' (starting alphanumeric)")
        return self.root / name

    def _read(self, name: str, digest: str, path: Path, canonical_key: str) -> CacheEntry:
        """Read and verify an entry; raises FileNotFoundError if absent, CorruptEntry if bad."""
        if not path.is_dir():
            raise FileNotFoundError(path)
        try:
            record = json.loads((path / META_FILE).read_text())
            data = (path / ARRAYS_FILE).read_bytes()
            if record.get("format") != FORMAT_VERSION:
                raise CorruptEntry(f"format {record.get('format')!r}, expected {FORMAT_VERSION}")
            if _sha256_bytes(data) != record["arrays_sha256"]:
                raise CorruptEntry(f"{ARRAYS_FILE} does not match its recorded sha256")
            if _canonical_json(record["key"], "the stored key") != canonical_key:
                raise CorruptEntry("the stored key differs from the requested one")
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as err:
            raise CorruptEntry(f"{type(err).__name__}: {err}") from err
        return CacheEntry(name, digest, path, arrays, record["meta"], record["key"], record["created"],
                          record["compute_seconds"], from_cache=True)

    def get_or_compute(self, name: str, key: Mapping[str, Any], compute: Compute) -> CacheEntry:
        """The entry for ``key`` under measurement ``name``: read from disk, or computed once and stored.

        ``compute()`` returns ``(arrays, meta)``: a dict of name -> numpy array and a dict of
        JSON metadata. Under concurrency exactly one caller computes; the others wait on the
        key's file lock and read its result.
        """
        name_dir = self._name_dir(name)
        canonical_key = _canonical_key(key)
        digest = _sha256_bytes(canonical_key.encode())
        path = name_dir / digest
        with contextlib.suppress(FileNotFoundError, CorruptEntry):
            return self._read(name, digest, path, canonical_key)
        name_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(name_dir / f"{digest}.lock")):
            for stale in name_dir.glob(f"{_TMP_PREFIX}{digest}-*"):
                shutil.rmtree(stale, ignore_errors=True)  # left by a writer that died holding this lock
            try:
                return self._read(name, digest, path, canonical_key)
            except FileNotFoundError:
                pass
            except CorruptEntry as err:
                log.warning("measurement cache: entry %s/%s is corrupt (%s); recomputing", name, digest, err)
                shutil.rmtree(path)
            return self._compute_and_store(name, digest, path, json.loads(canonical_key), compute)

    def _compute_and_store(
        self, name: str, digest: str, path: Path, key: dict[str, Any], compute: Compute
    ) -> CacheEntry:
        start = time.perf_counter()
        result = compute()
        seconds = time.perf_counter() - start
        if not (isinstance(result, tuple) and len(result) == 2):
            raise ValueError(f"the compute function for {name!r} must return a tuple (arrays, meta)")
        arrays = _check_arrays(result[0], name)
        meta = json.loads(_canonical_json(dict(result[1]), f"metadata of {name!r}"))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        data = buffer.getvalue()
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        record = {"format": FORMAT_VERSION, "name": name, "digest": digest, "key": key, "meta": meta,
                  "arrays_sha256": _sha256_bytes(data), "created": created, "compute_seconds": seconds}
        tmp = path.parent / f"{_TMP_PREFIX}{digest}-{uuid.uuid4().hex}"
        tmp.mkdir()
        _write_file(tmp / ARRAYS_FILE, data)
        _write_file(tmp / META_FILE, json.dumps(record, indent=1, sort_keys=True).encode())
        os.rename(tmp, path)
        return CacheEntry(name, digest, path, arrays, meta, key, created, seconds, from_cache=False)

    def entries(self, name: str | None = None) -> list[EntryInfo]:
        """Every readable entry (all measurements, or one), sorted by name and creation time."""
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
        return sorted(p for p in self.root.glob("*") if p.is_dir() and _NAME_RE.match(p.name))

    def clear(self, name: str | None = None) -> int:
        """Delete the entries, locks and leftover temporary directories (all measurements, or one).

        Only files the cache itself names (``<digest>``, ``<digest>.lock``, ``.tmp-<digest>-…``)
        are deleted. Returns the number of complete entries deleted. Not to be run while
        workers write.
        """
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
