"""What identifies a subject's weights: a hash of its config and weight files.

The identity enters every measurement's cache key, and a family sweep compares the hashes of
its checkpoints to find duplicates (Pythia issues #83, #198, #205: identical weights under two
step names), which the claims over training drop.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from harness.subjects.grammar import Subject
from harness.subjects.loading import as_subject, local_dir

WEIGHT_SUFFIXES = (".safetensors", ".bin")

_identity_cache: dict[tuple[Any, ...], str] = {}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _weights_sha256(directory: Path) -> str:
    """One sha256 over config.json and the weight files (name and content), cached per process.

    The cache key includes every file's size and modification time, so a rebuilt directory
    is hashed again.
    """
    files = sorted(p for p in directory.iterdir() if p.name == "config.json" or p.suffix in WEIGHT_SUFFIXES)
    if not any(p.suffix in WEIGHT_SUFFIXES for p in files):
        raise FileNotFoundError(f"{directory} holds no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    stamp = (str(directory.resolve()), *((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if stamp not in _identity_cache:
        digest = hashlib.sha256()
        for path in files:
            digest.update(f"{path.name}\0{_sha256_file(path)}\n".encode())
        _identity_cache[stamp] = digest.hexdigest()
    return _identity_cache[stamp]


def subject_identity(subject: Subject | str) -> dict[str, str | None]:
    """What identifies the subject's weights in a cache key.

    ``{"spec", "revision", "weights_sha256"}``; ``weights_sha256`` hashes config.json and the
    weight files of a local directory, and is None for a hub subject (the hub name and
    revision pin its weights).
    """
    subject = as_subject(subject)
    directory = local_dir(subject)
    return {
        "spec": subject.spec,
        "revision": subject.revision,
        "weights_sha256": None if directory is None else _weights_sha256(directory),
    }


