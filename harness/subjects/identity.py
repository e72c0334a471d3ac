"""What identifies a subject's weights: a hash of its config and weight files.

The identity enters every measurement's cache key, and a family sweep compares the hashes of
its checkpoints to find duplicates (Pythia issues #83, #198, #205: identical weights under two
step names), which the claims over training drop. A local or zoo directory is hashed as it is;
a hub subject is hashed from the local Hugging Face cache's snapshot of its revision when its
weights are there (nothing is downloaded), else it has no hash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from harness.subjects.grammar import Subject
from harness.subjects.loading import as_subject, local_dir

WEIGHT_SUFFIXES = (".safetensors", ".bin")  # in the loaders' order of preference

_identity_cache: dict[tuple[Any, ...], str] = {}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _weight_files(directory: Path) -> list[Path]:
    """The weight files a loader reads from ``directory``: its ``.safetensors`` files if it has any, else its
    ``.bin`` files, sorted; empty when it has neither, or when a shard index (``*.index.json``) lists a shard
    that is not there (an incomplete download)."""
    for suffix in WEIGHT_SUFFIXES:
        files = sorted(p for p in directory.iterdir() if p.suffix == suffix)
        if not files:
            continue
        shards = {name for index in directory.glob(f"*{suffix}.index.json")
                  for name in json.loads(index.read_text())["weight_map"].values()}
        return files if all((directory / name).is_file() for name in shards) else []
    return []


def _weights_sha256(directory: Path, files: list[Path]) -> str:
    """One sha256 over config.json and ``files`` (name and content), cached per process.

    The cache key includes every file's size and modification time (of the file a link points to),
    so a rebuilt directory is hashed again.
    """
    files = sorted([*([directory / "config.json"] if (directory / "config.json").is_file() else []), *files])
    stamp = (str(directory.resolve()), *((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if stamp not in _identity_cache:
        digest = hashlib.sha256()
        for path in files:
            digest.update(f"{path.name}\0{_sha256_file(path)}\n".encode())
        _identity_cache[stamp] = digest.hexdigest()
    return _identity_cache[stamp]


def _hub_snapshot(subject: Subject) -> Path | None:
    """The local Hugging Face cache's snapshot directory of a hub subject's revision, or None when the
    cache does not hold its config (nothing is downloaded)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(str(subject.hub_name), "config.json", revision=subject.revision)
    return Path(found).parent if isinstance(found, str) else None


def subject_identity(subject: Subject | str) -> dict[str, str | None]:
    """What identifies the subject's weights in a cache key.

    ``{"spec", "revision", "weights_sha256"}``; ``weights_sha256`` hashes config.json and the weight
    files (``_weight_files``) of a local directory — raising FileNotFoundError when it holds none — or
    of a hub subject's cached snapshot, and is None for a hub subject whose weights are not in the
    local cache (its hub name and revision still pin them).
    """
    subject = as_subject(subject)
    directory = local_dir(subject)
    if directory is None:
        snapshot = _hub_snapshot(subject)
        files = _weight_files(snapshot) if snapshot is not None else []
        digest = _weights_sha256(snapshot, files) if files else None
    else:
        files = _weight_files(directory)
        if not files:
            raise FileNotFoundError(f"{directory} holds no complete set of weight files ({', '.join(WEIGHT_SUFFIXES)})")
        digest = _weights_sha256(directory, files)
    return {"spec": subject.spec, "revision": subject.revision, "weights_sha256": digest}
