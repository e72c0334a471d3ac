"""The measurement cache: computed once under concurrency, atomic under a killed writer,
and a corrupt entry is detected and recomputed; at an s3:// URL (a real S3 API served by
moto on 127.0.0.1) entries round-trip, are verified, and two racing jobs leave one entry."""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import signal
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from harness.measure.cache import ARRAYS_FILE, META_FILE, MeasurementCache, default_root, key_digest

NAME = "activations"
KEY = {"measurement": NAME, "version": 1, "params": {"layer": 3, "quantile": 0.5}, "subject": {"spec": "zoo:x@step1"},
       "dtype": "float32", "eval": "ab12", "seed": 0}
N_WORKERS = 4
WRITE_LIMIT_BYTES = 4096  # RLIMIT_FSIZE for the writer killed mid-write: far below the array's size


def _arrays(seed: int, n: int = 1000) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"acts": rng.standard_normal((n, 8)).astype(np.float32), "ids": np.arange(n, dtype=np.int64)}


class CountingCompute:
    """A measurement that appends a line to ``log`` each time it runs (counts across processes)."""

    def __init__(self, log: Path, seed: int = 0, n: int = 1000, seconds: float = 0.0) -> None:
        self.log, self.seed, self.n, self.seconds = log, seed, n, seconds

    def __call__(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        with self.log.open("a") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(self.seconds)
        return _arrays(self.seed, self.n), {"n_positions": self.n}

    @property
    def runs(self) -> int:
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0


def _race_worker(root: str, log: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    entry = MeasurementCache(root).get_or_compute(NAME, KEY, CountingCompute(Path(log), seconds=0.5))
    results.put((entry.from_cache, {k: v.tolist() for k, v in entry.arrays.items()}))


def _killed_writer(root: str, log: str) -> None:
    compute = CountingCompute(Path(log), n=100_000)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it; the default action kills
    resource.setrlimit(resource.RLIMIT_FSIZE, (WRITE_LIMIT_BYTES, WRITE_LIMIT_BYTES))
    MeasurementCache(root).get_or_compute(NAME, KEY, compute)  # SIGXFSZ kills it inside the write


def test_entries_round_trip_and_keys_address_them(tmp_path: Path) -> None:
    cache, compute = MeasurementCache(tmp_path), CountingCompute(tmp_path / "runs")
    first = cache.get_or_compute(NAME, KEY, compute)
    again = cache.get_or_compute(NAME, dict(reversed(KEY.items())), compute)
    assert (first.from_cache, again.from_cache, compute.runs) == (False, True, 1)
    assert first.path == again.path == tmp_path / NAME / key_digest(KEY)
    assert sorted(p.name for p in first.path.iterdir()) == [ARRAYS_FILE, META_FILE]
    for name, array in _arrays(0).items():
        np.testing.assert_array_equal(again.arrays[name], array)
        assert again.arrays[name].dtype == array.dtype
    assert again.meta == {"n_positions": 1000} and again.key == KEY
    other = cache.get_or_compute(NAME, {**KEY, "seed": 1}, compute)
    assert not other.from_cache and other.digest != first.digest and compute.runs == 2


def test_default_root_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RARE_CACHE_DIR", str(tmp_path))
    assert default_root() == MeasurementCache().root == tmp_path
    monkeypatch.delenv("RARE_CACHE_DIR")
    assert MeasurementCache().root == Path.home() / ".cache" / "rare-token-claims" / "measurements"


@pytest.mark.parametrize(
    ("key", "message"),
    [({"x": np.float32(1.0)}, "JSON"), ({"x": float("nan")}, "JSON"), ([("x", 1)], "mapping")],
)
def test_keys_must_be_json_data(key: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        key_digest(key)


def test_bad_names_and_results_are_refused(tmp_path: Path) -> None:
    cache = MeasurementCache(tmp_path)
    with pytest.raises(ValueError, match="letters, digits"):
        cache.get_or_compute("../escape", KEY, lambda: ({}, {}))
    with pytest.raises(ValueError, match="numpy array"):
        cache.get_or_compute(NAME, KEY, lambda: ({"x": [1, 2]}, {}))
    with pytest.raises(ValueError, match="tuple"):
        cache.get_or_compute(NAME, KEY, lambda: _arrays(0))
    assert cache.entries() == []


def test_concurrent_workers_compute_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, results, log = ctx.Barrier(N_WORKERS), ctx.Queue(), tmp_path / "runs"
    workers = [ctx.Process(target=_race_worker, args=(str(tmp_path / "cache"), str(log), barrier, results))
               for _ in range(N_WORKERS)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0] * N_WORKERS
    assert len(log.read_text().splitlines()) == 1
    assert sorted(from_cache for from_cache, _ in outcomes) == [False] + [True] * (N_WORKERS - 1)
    expected = {k: v.tolist() for k, v in _arrays(0).items()}
    assert all(arrays == expected for _, arrays in outcomes)


def test_a_writer_killed_mid_write_leaves_no_entry(tmp_path: Path) -> None:
    root, log = tmp_path / "cache", tmp_path / "runs"
    writer = multiprocessing.get_context("spawn").Process(target=_killed_writer, args=(str(root), str(log)))
    writer.start()
    writer.join(timeout=120)
    assert writer.exitcode == -signal.SIGXFSZ
    partial = list((root / NAME).glob(f".tmp-*/{ARRAYS_FILE}"))
    assert [p.stat().st_size for p in partial] == [WRITE_LIMIT_BYTES]  # it died inside the write
    cache = MeasurementCache(root)
    assert cache.entries() == []
    compute = CountingCompute(log, n=100_000)
    entry = cache.get_or_compute(NAME, KEY, compute)
    assert not entry.from_cache and compute.runs == 2
    np.testing.assert_array_equal(entry.arrays["acts"], _arrays(0, 100_000)["acts"])
    assert not list((root / NAME).glob(".tmp-*"))  # the dead writer's leftovers are gone


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda entry: _flip_a_byte(entry / ARRAYS_FILE),
        lambda entry: (entry / ARRAYS_FILE).write_bytes((entry / ARRAYS_FILE).read_bytes()[:100]),
        lambda entry: (entry / META_FILE).write_text("{"),
        lambda entry: (entry / ARRAYS_FILE).unlink(),
    ],
    ids=["flipped-byte", "truncated-arrays", "broken-meta", "missing-arrays"],
)
def test_a_corrupt_entry_is_logged_and_recomputed(tmp_path: Path, caplog: pytest.LogCaptureFixture, corrupt: Any) -> None:
    cache, compute = MeasurementCache(tmp_path), CountingCompute(tmp_path / "runs")
    corrupt(cache.get_or_compute(NAME, KEY, compute).path)
    with caplog.at_level(logging.WARNING, logger="harness.measure.cache"):
        entry = cache.get_or_compute(NAME, KEY, compute)
    assert not entry.from_cache and compute.runs == 2
    assert any("corrupt" in r.message and key_digest(KEY) in r.message for r in caplog.records)
    np.testing.assert_array_equal(entry.arrays["acts"], _arrays(0)["acts"])
    assert cache.get_or_compute(NAME, KEY, compute).from_cache


def test_entries_and_clear(tmp_path: Path) -> None:
    cache, compute = MeasurementCache(tmp_path), CountingCompute(tmp_path / "runs")
    for name, seed in [("a", 0), ("a", 1), ("b", 0)]:
        cache.get_or_compute(name, {**KEY, "seed": seed}, compute)
    foreign = tmp_path / "a" / "notes.txt"
    foreign.write_text("not the cache's")
    infos = cache.entries()
    assert [i.name for i in infos] == ["a", "a", "b"]
    assert all(i.size_bytes == sum(p.stat().st_size for p in i.path.iterdir()) for i in infos)
    assert cache.clear("a") == 2 and [i.name for i in cache.entries()] == ["b"]
    assert foreign.exists()  # clear deletes only what the cache names
    assert cache.clear() == 1 and cache.entries() == []


# -- an object store: the cache at an s3:// URL, served by a real S3 API (moto's server) on 127.0.0.1 ------------

BUCKET = "rare-cache"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server in this process's threads; the endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_root(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """A fresh bucket prefix, with dummy credentials and the endpoint in the environment (as a CI job sets them)."""
    import fsspec

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(name, value)
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    if not fs.exists(BUCKET):
        fs.mkdir(BUCKET)
    return f"s3://{BUCKET}/{request.node.name.replace('[', '-').replace(']', '')}"


def _s3_race_worker(root: str, log: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    entry = MeasurementCache(root).get_or_compute(NAME, KEY, CountingCompute(Path(log), seconds=0.5))
    results.put((entry.from_cache, {k: v.tolist() for k, v in entry.arrays.items()}))


def test_an_s3_cache_round_trips_and_lists_its_entries(s3_root: str, tmp_path: Path) -> None:
    import fsspec

    cache, compute = MeasurementCache(s3_root), CountingCompute(tmp_path / "runs")
    first = cache.get_or_compute(NAME, KEY, compute)
    again = MeasurementCache(s3_root).get_or_compute(NAME, dict(reversed(KEY.items())), compute)
    assert (first.from_cache, again.from_cache, compute.runs) == (False, True, 1)
    assert first.path == again.path == f"{s3_root}/{NAME}/{key_digest(KEY)}"
    for name, array in _arrays(0).items():
        np.testing.assert_array_equal(again.arrays[name], array)
    assert again.meta == {"n_positions": 1000} and again.key == KEY
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    objects = sorted(p.rsplit("/", 1)[1] for p in fs.ls(first.path.removeprefix("s3://")))
    assert len(objects) == 2 and objects[1] == META_FILE and objects[0].startswith("arrays-")
    assert [(e.name, e.digest, e.path) for e in cache.entries()] == [(NAME, first.digest, first.path)]
    assert cache.clear() == 1 and cache.entries() == []


def test_a_corrupt_s3_entry_is_logged_and_recomputed(s3_root: str, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    import fsspec

    cache, compute = MeasurementCache(s3_root), CountingCompute(tmp_path / "runs")
    entry = cache.get_or_compute(NAME, KEY, compute)
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    arrays = [p for p in fs.ls(entry.path.removeprefix("s3://")) if "arrays-" in p][0]
    data = bytearray(fs.cat_file(arrays))
    data[len(data) // 2] ^= 0xFF
    fs.pipe_file(arrays, bytes(data))
    with caplog.at_level(logging.WARNING, logger="harness.measure.object_cache"):
        again = MeasurementCache(s3_root).get_or_compute(NAME, KEY, compute)
    assert not again.from_cache and compute.runs == 2
    assert any("corrupt" in r.message and key_digest(KEY) in r.message for r in caplog.records)
    assert MeasurementCache(s3_root).get_or_compute(NAME, KEY, compute).from_cache


def test_two_jobs_racing_for_one_s3_key_leave_one_verified_entry(s3_root: str, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, results, log = ctx.Barrier(2), ctx.Queue(), tmp_path / "runs"
    workers = [ctx.Process(target=_s3_race_worker, args=(s3_root, str(log), barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0]
    expected = {k: v.tolist() for k, v in _arrays(0).items()}
    assert all(arrays == expected for _, arrays in outcomes)
    assert 1 <= len(log.read_text().splitlines()) <= 2  # no locks on object storage: each job may compute
    cache = MeasurementCache(s3_root)
    assert len(cache.entries()) == 1
    entry = cache.get_or_compute(NAME, KEY, CountingCompute(log))
    assert entry.from_cache and {k: v.tolist() for k, v in entry.arrays.items()} == expected


def test_a_file_url_is_a_local_directory(tmp_path: Path) -> None:
    cache = MeasurementCache(f"file://{tmp_path}")
    assert cache.root == tmp_path and cache.remote is None
    entry = cache.get_or_compute(NAME, KEY, CountingCompute(tmp_path / "runs"))
    assert entry.path == tmp_path / NAME / key_digest(KEY)
