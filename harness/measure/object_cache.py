"""The measurement cache on object storage (``s3://``, ``gs://``, … through fsspec), shared by jobs.

Object stores have no rename and no locks, so an entry ``<root>/<name>/<digest>/`` is written as
two objects in order: first the arrays under their own content address
``arrays-<sha256>.npz``, then ``meta.json`` (the key, the arrays' sha256, …), which is the
commit marker: an entry exists once its metadata does, and the metadata only ever names arrays
that were completely written before it. Every read verifies the arrays' sha256 and the key.

Two jobs that miss the same key both compute it (measurements are pure functions of their key);
whichever writes its metadata last wins, and each metadata object names arrays that exist, so a
reader never pairs one job's metadata with the other's arrays. A job that finds the metadata
already written when its computation ends stores nothing. The loser's arrays object may stay
behind, unreferenced (``clear`` removes it).

Credentials and endpoints come from the environment as each fsspec backend reads them
(``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, …) or from ``storage_options``.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping

import fsspec

from harness.measure.entries import (
    META_FILE,
    CacheEntry,
    Compute,
    CorruptEntry,
    EntryInfo,
    compute_entry,
    decode_entry,
)

log = logging.getLogger(__name__)


def arrays_object(sha256: str) -> str:
    """The name of an entry's arrays object, addressed by the sha256 of its bytes."""
    return f"arrays-{sha256}.npz"


class ObjectCache:
    """Entries under the fsspec URL ``root`` (module docstring)."""

    def __init__(self, root: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.fs, path = fsspec.core.url_to_fs(root, **dict(storage_options or {}))
        self.root = path.rstrip("/")
        self.url = root

    def _entry_dir(self, name: str, digest: str) -> str:
        return f"{self.root}/{name}/{digest}"

    def _url(self, name: str, digest: str) -> str:
        """The entry's URL (``CacheEntry.path``)."""
        return f"{self.url.rstrip('/')}/{name}/{digest}"

    def _read(self, name: str, digest: str, canonical_key: str) -> CacheEntry:
        """The verified entry; FileNotFoundError when its metadata does not exist, CorruptEntry when bad."""
        where = self._entry_dir(name, digest)
        meta = self.fs.cat_file(f"{where}/{META_FILE}")
        return decode_entry(name, digest, self._url(name, digest), lambda: meta,
                            lambda record: self.fs.cat_file(f"{where}/{arrays_object(record['arrays_sha256'])}"),
                            canonical_key)

    def get_or_compute(self, name: str, digest: str, canonical_key: str, compute: Compute) -> CacheEntry:
        """The entry of ``digest``: read, or computed and written (arrays, then the metadata)."""
        try:
            return self._read(name, digest, canonical_key)
        except FileNotFoundError:
            pass
        except CorruptEntry as err:
            log.warning("measurement cache: entry %s/%s is corrupt (%s); recomputing", name, digest, err)
        encoded = compute_entry(name, digest, self._url(name, digest), json.loads(canonical_key), compute)
        where = self._entry_dir(name, digest)
        if self.fs.exists(f"{where}/{META_FILE}"):
            try:  # another job committed this entry while we computed: keep theirs
                return self._read(name, digest, canonical_key)
            except CorruptEntry:
                pass
        self.fs.pipe_file(f"{where}/{arrays_object(encoded.record['arrays_sha256'])}", encoded.data)
        self.fs.pipe_file(f"{where}/{META_FILE}", encoded.record_bytes)
        self.fs.invalidate_cache(where)
        return encoded.entry

    def entries(self, name: str | None = None) -> list[EntryInfo]:
        """Every committed entry (all measurements, or one), sorted by name and creation time."""
        pattern = f"{self.root}/{name or '*'}/*/{META_FILE}"
        found = []
        for meta_path in self.fs.glob(pattern):
            entry_dir = meta_path.rsplit("/", 1)[0]
            try:
                record = json.loads(self.fs.cat_file(meta_path))
                size = sum(info["size"] for info in self.fs.ls(entry_dir, detail=True))
            except (OSError, ValueError) as err:
                log.warning("measurement cache: skipping unreadable entry %s (%s)", entry_dir, err)
                continue
            measurement, digest = entry_dir.rsplit("/", 2)[1:]
            found.append(EntryInfo(measurement, digest, self._url(measurement, digest), record["created"],
                                   record["compute_seconds"], size))
        return sorted(found, key=lambda e: (e.name, e.created, e.digest))

    def clear(self, name: str | None = None) -> int:
        """Delete every entry (all measurements, or one), orphaned arrays included; returns the committed
        entries deleted. Not to be run while jobs write."""
        count = len(self.entries(name))
        for entry_dir in self.fs.glob(f"{self.root}/{name or '*'}/*"):
            self.fs.rm(entry_dir, recursive=True)
        self.fs.invalidate_cache(self.root)
        return count
