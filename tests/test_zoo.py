"""The zoo: tiny families build quickly, completely, deterministically and atomically, and load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import zoo
from harness.zoo import builder, specs


def _trained(spec: specs.FamilySpec) -> specs.ZooSpec:
    """The trained family behind a spec (a planted family's base)."""
    return zoo.ZOO[spec.base] if isinstance(spec, specs.PlantedSpec) else spec


# the families that build in seconds; the model-level calibration's 512-update neox-2l ones are built by it
TINY = [name for name, spec in zoo.ZOO.items() if not spec.default and _trained(spec).final_step <= 32]
PLANTED = [name for name in TINY if isinstance(zoo.ZOO[name], specs.PlantedSpec)]
TRAINED = [name for name in TINY if name not in PLANTED]
MAX_D_MLP, MAX_VOCAB = 1024, 8192  # the influence sweep costs positions × d_mlp × vocabulary


def _build_cli(name: str, root: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "zoo", "build", name, "--root", str(root), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


@pytest.fixture
def tiny_root(tiny_zoo) -> Path:
    """The session's tiny zoo with every tiny family built."""
    return tiny_zoo(*TINY)


def _weights(path: Path) -> dict[int, bytes]:
    return {int(d.name[4:]): (d / "model.safetensors").read_bytes() for d in path.glob("step*")}


def test_pythia_schedule():
    assert specs.pythia_schedule(1000, 4) == (0, 1, 2, 4, 8, 16, 32, 64, 128, 250, 500, 750, 1000)
    assert specs.pythia_schedule(32, 1) == (0, 1, 2, 4, 8, 16, 32)
    with pytest.raises(ValueError, match="divisible"):
        specs.pythia_schedule(1000, 3)


def test_specs_fit_the_budget():
    defaults = [s for s in zoo.ZOO.values() if s.default]
    assert {s.name.split("-")[0] for s in defaults} == {"neox", "gpt2"}
    for spec in zoo.ZOO.values():
        assert _trained(spec).d_mlp <= MAX_D_MLP and spec.vocab_size <= MAX_VOCAB
        assert spec.steps[0] == 0 and list(spec.steps) == sorted(set(spec.steps))
        assert spec.name.startswith({"gpt_neox": "neox-", "gpt2": "gpt2-"}[spec.arch])
    for spec in defaults:
        assert _trained(spec).n_ctx == 128 and 12 <= len(spec.steps) <= 16


def test_unknown_family():
    with pytest.raises(ValueError, match="neox-tiny"):
        zoo.ensure_built("pythia-70m")


def test_tiny_families_build_completely(tiny_root):
    root = tiny_root
    for name in TRAINED:
        spec, path = zoo.ZOO[name], root / name
        assert zoo.is_built(name, root)
        manifest = json.loads((path / zoo.MANIFEST).read_text())
        assert manifest["steps"] == list(spec.steps)
        assert sorted(_weights(path)) == list(spec.steps)
        for step, record in manifest["checkpoints"].items():
            assert builder._sha256(path / f"step{step}" / "model.safetensors") == record["sha256"]
        counts = np.load(path / zoo.COUNTS)
        assert counts.dtype == np.int64 and counts.shape == (spec.vocab_size,)
        assert counts.sum() == manifest["train_stream_tokens"]
        assert counts[zoo.BOS_ID] > 0  # every training document starts with BOS
        assert manifest["checkpoints"][str(spec.final_step)]["eval_loss"] < manifest["checkpoints"]["0"]["eval_loss"]
        assert not list(root.glob(f".tmp-{name}-*"))


def test_a_study_of_a_planted_checkpoint_knows_its_planted_neurons(tiny_root):
    """``Study.planted_neurons`` reads the family's ``planted_neurons.json`` (what group records compare
    their specialists with); an unplanted family has none."""
    from harness.measure.cache import MeasurementCache
    from harness.measure.study import Study, StudyConfig
    from harness.subjects import parse_subject

    for name in PLANTED:
        ids = json.loads((tiny_root / name / zoo.PLANTED_IDS).read_text())["planted_neurons"]
        study = Study(parse_subject(f"zoo:{name}@step{zoo.ZOO[name].final_step}"), StudyConfig(), MeasurementCache(None))
        assert study.planted_neurons().tolist() == ids
        base = zoo.ZOO[name].base
        assert Study(parse_subject(f"zoo:{base}"), StudyConfig(), MeasurementCache(None)).planted_neurons() is None


def test_planted_families_change_only_the_planted_rows(tiny_root):
    """A planted checkpoint is its base checkpoint with the planted neurons' final-MLP read rows, biases and
    write columns changed (not at step 0, where the strength is 0); the counts are the base's. At full
    strength the planted write rows share one direction at the layer's median norm on average, and their
    read rows share the rare-context direction only in part (``harness.zoo.planted``)."""
    from safetensors.torch import load_file

    for name in PLANTED:
        spec, path = zoo.ZOO[name], tiny_root / name
        base = tiny_root / spec.base
        assert zoo.is_built(name, tiny_root)
        ids = json.loads((path / zoo.MANIFEST).read_text())["planted_neurons"]
        assert ids == sorted(set(ids)) and len(ids) == spec.n_planted
        assert json.loads((path / zoo.PLANTED_IDS).read_text())["planted_neurons"] == ids
        assert np.array_equal(np.load(path / zoo.COUNTS), np.load(base / zoo.COUNTS))
        last = f"gpt_neox.layers.{zoo.ZOO[spec.base].n_layers - 1}.mlp"
        for step in (0, spec.final_step):
            planted = load_file(path / f"step{step}" / "model.safetensors")
            original = load_file(base / f"step{step}" / "model.safetensors")
            assert planted.keys() == original.keys()
            changed = {k for k in planted if not torch.equal(planted[k], original[k])}
            assert changed <= {f"{last}.dense_h_to_4h.weight", f"{last}.dense_h_to_4h.bias",
                               f"{last}.dense_4h_to_h.weight"}
            if step == 0:  # strength 0: each row, its scale and its bias come back, up to rounding
                for k in changed:
                    torch.testing.assert_close(planted[k], original[k], rtol=1e-5, atol=1e-6)
            else:
                rows = (planted[f"{last}.dense_h_to_4h.weight"] != original[f"{last}.dense_h_to_4h.weight"]).any(1)
                assert torch.nonzero(rows).flatten().tolist() == ids
        # at full strength: one shared write direction, at the layer's median norm on average; reads not copies
        write = planted[f"{last}.dense_4h_to_h.weight"].T                       # [d_mlp, d_model]
        unit = lambda x: x / x.norm(dim=1, keepdim=True)  # noqa: E731
        cos_write = unit(write[ids]) @ unit(write[ids]).T
        torch.testing.assert_close(cos_write, torch.ones_like(cos_write), rtol=0, atol=1e-5)
        layer_median = original[f"{last}.dense_4h_to_h.weight"].norm(dim=0).median()   # the base's, as planted
        torch.testing.assert_close(write[ids].norm(dim=1).mean(), layer_median, rtol=1e-4, atol=0)
        read = unit(planted[f"{last}.dense_h_to_4h.weight"][ids])
        off_diagonal = (read @ read.T)[~torch.eye(len(ids), dtype=torch.bool)]
        assert 0 < off_diagonal.min() and off_diagonal.max() < 0.99


def test_planted_read_rows_mix_the_shared_direction_with_each_neurons_own():
    """``read_mix`` sets how alike the planted neurons read: at 0 every read row is the shared rare-context
    direction (cosine 1 between rows), and the rows part as the mix grows; at every mix each planted
    pre-activation has the neuron's original SD and a mean of −FIRING_OFFSET SDs over the contexts (exact)."""
    from harness.zoo.planted import FIRING_OFFSET, _read_rows

    g = torch.Generator().manual_seed(0)
    mlp_in = torch.randn(2000, 48, generator=g, dtype=torch.float64) @ torch.randn(48, 48, generator=g,
                                                                                    dtype=torch.float64)
    rare = torch.arange(2000) < 200
    mlp_in[rare] += 3.0 * torch.randn(48, generator=g, dtype=torch.float64)
    pre_sd = torch.linspace(0.5, 2.0, 6, dtype=torch.float64)
    least_cosine = []
    for read_mix in (0.0, 0.25, 0.5):
        read, bias = _read_rows(mlp_in, rare, pre_sd, seed=3, read_mix=read_mix)
        pre = mlp_in @ read.T + bias
        torch.testing.assert_close(pre.std(0), pre_sd)
        torch.testing.assert_close(pre.mean(0), -FIRING_OFFSET * pre_sd)
        unit = read / read.norm(dim=1, keepdim=True)
        least_cosine.append(float((unit @ unit.T).min()))
    assert least_cosine[0] == pytest.approx(1.0)
    assert least_cosine[0] > least_cosine[1] + 0.01 > least_cosine[2] + 0.02


def test_checkpoints_load_offline_in_transformers_and_transformer_lens(tiny_root):
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tiny_root
    for name in TINY:
        spec = _trained(zoo.ZOO[name])
        directory = root / name / f"step{spec.final_step}"
        tokenizer = AutoTokenizer.from_pretrained(directory)
        assert tokenizer.bos_token_id == tokenizer.eos_token_id == tokenizer.pad_token_id == zoo.BOS_ID
        assert len(tokenizer) == spec.vocab_size
        ids = torch.tensor([[zoo.BOS_ID] + tokenizer.encode("To be, or not to be", add_special_tokens=False)])
        model = AutoModelForCausalLM.from_pretrained(directory).eval()
        assert model.config.model_type == spec.arch
        with torch.no_grad():
            hf_logits = model(ids).logits
            bridge = TransformerBridge.boot_transformers(str(directory), device="cpu")
            tl_logits = bridge(ids, return_type="logits")
        assert bridge.cfg.d_mlp == spec.d_mlp and bridge.cfg.n_layers == spec.n_layers
        torch.testing.assert_close(tl_logits, hf_logits, atol=1e-4, rtol=1e-4)


def test_build_is_deterministic_across_processes(tiny_root, tmp_path):
    root = tiny_root
    name = TINY[0]
    proc = _build_cli(name, tmp_path)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out.decode()
    assert _weights(tmp_path / name) == _weights(root / name)
    step = zoo.ZOO[name].final_step
    for file in ("tokenizer.json", "tokenizer_config.json", "config.json"):
        assert (tmp_path / name / f"step{step}" / file).read_bytes() == (root / name / f"step{step}" / file).read_bytes()
    assert np.array_equal(np.load(tmp_path / name / zoo.COUNTS), np.load(root / name / zoo.COUNTS))


def test_interrupted_build_never_looks_complete(tiny_root, tmp_path):
    root = tiny_root
    name = TINY[0]
    proc = _build_cli(name, tmp_path)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(f".tmp-{name}-*/step0/model.safetensors")) and proc.poll() is None:
        assert time.monotonic() < deadline, "the build never wrote its first checkpoint"
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert not (tmp_path / name).exists() and not zoo.is_built(name, tmp_path)
    assert list(tmp_path.glob(f".tmp-{name}-*"))  # the partial build is where it was left

    path = zoo.ensure_built(name, tmp_path, progress=False)  # recovers: clears the leftovers
    assert not list(tmp_path.glob(f".tmp-{name}-*"))
    assert _weights(path) == _weights(root / name)


def test_a_build_of_another_spec_is_stale(tmp_path):
    name = TINY[0]
    (tmp_path / name).mkdir()
    record = specs.spec_record(zoo.ZOO[name])
    (tmp_path / name / zoo.MANIFEST).write_text(json.dumps({"spec": {**record, "seed": record["seed"] + 1}}))
    assert not zoo.is_built(name, tmp_path)
    (tmp_path / name / zoo.MANIFEST).write_text(json.dumps({"spec": record}))
    assert zoo.is_built(name, tmp_path)
