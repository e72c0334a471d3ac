"""One measurement-cache entry, independent of where it is stored: its key's digest, its encoding
(arrays as one .npz, metadata as JSON naming the arrays' sha256) and its verified decoding.

Shared by the local cache (``harness.measure.cache``) and the object-storage cache
(``harness.measure.object_cache``).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

FORMAT_VERSION = 1
ARRAYS_FILE = "arrays.npz"
META_FILE = "meta.json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

Compute = Callable[[], tuple[Mapping[str, np.ndarray], Mapping[str, Any]]]


def sha256_bytes(data: bytes) -> str:
    """The sha256 of ``data``, hex."""
    return hashlib.sha256(data).hexdigest()


def canonical_json(value: Any, what: str) -> str:
    """``value`` as canonical JSON (sorted keys, no whitespace); ValueError naming ``what`` if it is not JSON data."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{what} must be JSON data (str, int, finite float, bool, None, lists, str-keyed dicts): {err}"
        ) from err


def canonical_key(key: Mapping[str, Any]) -> str:
    """A cache key's canonical JSON; ValueError unless it is a mapping of JSON data."""
    if not isinstance(key, Mapping):
        raise ValueError(f"a cache key is a mapping, got {type(key).__name__}")
    return canonical_json(dict(key), "a cache key")


def key_digest(key: Mapping[str, Any]) -> str:
    """The sha256 (hex) of the key's canonical JSON (sorted keys, no whitespace).

    Raises ValueError if the key holds anything but JSON data (e.g. a numpy scalar or NaN).
    """
    return sha256_bytes(canonical_key(key).encode())


@dataclass(frozen=True)
class CacheEntry:
    """One measurement: its arrays, its own metadata and where it came from.

    ``from_cache`` is False when this call computed it; ``compute_seconds`` is the time the
    computation took when it was made.
    """

    name: str
    digest: str
    path: Path | str
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
    path: Path | str
    created: str
    compute_seconds: float
    size_bytes: int


class CorruptEntry(Exception):
    """An entry on disk that does not read back as written (internal to the cache)."""


def _check_arrays(arrays: Any, name: str) -> dict[str, np.ndarray]:
    if not isinstance(arrays, Mapping) or not all(isinstance(k, str) and k for k in arrays):
        raise ValueError(
            f"the compute function for {name!r} must return (arrays, meta), arrays a dict of name -> numpy array"
        )
    bad = [k for k, v in arrays.items() if not isinstance(v, np.ndarray) or v.dtype.hasobject]
    if bad:
        raise ValueError(f"the compute function for {name!r} returned non-numeric arrays {bad}; give numpy arrays")
    return dict(arrays)


def check_name(name: str) -> str:
    """A measurement name: letters, digits, '_', '.', '-' (starting alphanumeric); ValueError otherwise."""
    if not NAME_RE.match(name):
        raise ValueError(f"measurement name {name!r} must be letters, digits, '_', '.', '-' (starting alphanumeric)")
    return name


def decode_entry(name: str, digest: str, path: Path | str, read_meta: Callable[[], bytes],
                 read_arrays: Callable[[dict[str, Any]], bytes], canonical: str) -> CacheEntry:
    """An entry from its stored metadata and arrays, verified: format, arrays sha256, key.

    ``read_arrays(record)`` gets the parsed metadata (it names the arrays). Raises
    ``CorruptEntry`` when anything does not read back as written (a missing file included: the
    caller tells an absent entry from a broken one).
    """
    try:
        record = json.loads(read_meta())
        data = read_arrays(record)
        if record.get("format") != FORMAT_VERSION:
            raise CorruptEntry(f"format {record.get('format')!r}, expected {FORMAT_VERSION}")
        if sha256_bytes(data) != record["arrays_sha256"]:
            raise CorruptEntry(f"{ARRAYS_FILE} does not match its recorded sha256")
        if canonical_json(record["key"], "the stored key") != canonical:
            raise CorruptEntry("the stored key differs from the requested one")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as err:
        raise CorruptEntry(f"{type(err).__name__}: {err}") from err
    return CacheEntry(name, digest, path, arrays, record["meta"], record["key"], record["created"],
                      record["compute_seconds"], from_cache=True)


@dataclass(frozen=True)
class Encoded:
    """A computed measurement ready to store: ``data`` (the arrays as .npz bytes), ``record`` (the
    metadata document, naming the arrays' sha256) and the entry it reads back as."""

    data: bytes
    record: dict[str, Any]
    entry: CacheEntry

    @property
    def record_bytes(self) -> bytes:
        return json.dumps(self.record, indent=1, sort_keys=True).encode()


def compute_entry(name: str, digest: str, path: Path | str, key: dict[str, Any], compute: Compute) -> Encoded:
    """Run ``compute`` and encode its result (``ValueError`` for a result that is not (arrays, meta))."""
    start = time.perf_counter()
    result = compute()
    seconds = time.perf_counter() - start
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ValueError(f"the compute function for {name!r} must return a tuple (arrays, meta)")
    arrays = _check_arrays(result[0], name)
    meta = json.loads(canonical_json(dict(result[1]), f"metadata of {name!r}"))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record = {"format": FORMAT_VERSION, "name": name, "digest": digest, "key": key, "meta": meta,
              "arrays_sha256": sha256_bytes(data), "created": created, "compute_seconds": seconds}
    return Encoded(data, record, CacheEntry(name, digest, path, arrays, meta, key, created, seconds, from_cache=False))
