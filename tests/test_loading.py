"""Loading: local GPT-NeoX, GPT-2, Llama and Gemma directories load offline as TransformerBridges whose
logits, hooks and final norm are the Hugging Face model's own, and whose config answers the questions the
measurements ask (layers, parallel blocks, context, vocabulary)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import huggingface_hub.constants as hub_constants
import pytest
import torch
from transformers import AutoModelForCausalLM

from harness import zoo
from harness.claims import CLAIMS
from harness.claims.runner import Session, Target
from harness.claims.settings import load_settings
from harness.measure.cache import MeasurementCache
from harness.measure.study import StudyConfig
from harness.subjects import expand_subjects, parse_subject
from harness.subjects.identity import subject_identity
from harness.subjects.loading import (
    REQUIRED_HOOKS,
    context_length,
    load_model,
    load_tokenizer,
    local_dir,
    model_config,
    n_layers,
    parallel_attention,
)

TOLERANCE = 1e-4  # max |logit difference| between the bridge and Hugging Face, float32
TEXT = "the quick brown fox jumps over the lazy dog while the cat sleeps"
NEOX_STEPS = (0, 4)
PLAIN = ("gpt2", "llama", "gemma")  # one plain directory each

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory, one_thread, tiny_model, save_model) -> dict[str, Path]:
    """``neox``: step0/ and step4/ checkpoints (different seeds); ``gpt2``, ``llama``, ``gemma``: plain directories."""
    root = tmp_path_factory.mktemp("models")
    for step in NEOX_STEPS:
        save_model(tiny_model("gpt_neox", seed=step), root / "neox" / f"step{step}")
    for arch in PLAIN:  # GPT-2's default dropout is 0.1 when training: eval mode is what is tested
        save_model(tiny_model(arch, seed=1, perturb=0.3), root / arch)
    return {"neox": root / "neox", **{arch: root / arch for arch in PLAIN}}


def _tokens(spec: str) -> torch.Tensor:
    tokenizer = load_tokenizer(spec)
    return torch.tensor([[tokenizer.bos_token_id, *tokenizer(TEXT, add_special_tokens=False).input_ids]])


@pytest.mark.parametrize("which", ["neox@step4", *PLAIN])
def test_bridge_matches_hugging_face(dirs: dict[str, Path], hf_part, which: str) -> None:
    name, _, revision = which.partition("@")
    spec = f"hf:{dirs[name]}" + (f"@{revision}" if revision else "")
    bridge = load_model(spec)
    hf = AutoModelForCausalLM.from_pretrained(local_dir(spec), attn_implementation="eager").eval()
    tokens = _tokens(spec)
    hooks = [h.format(layer=n_layers(spec) - 1) for h in REQUIRED_HOOKS]
    with torch.no_grad():
        logits, cache = bridge.run_with_cache(tokens, names_filter=hooks)
        expected = hf(tokens).logits
        # the bridge keeps the real final norm: unembedding its input by hand gives the logits
        by_hand = hf.get_output_embeddings()(hf_part(hf, "final_norm")(cache["ln_final.hook_in"]))
    assert not any(m.training for m in bridge.modules())
    assert (logits - expected).abs().max().item() <= TOLERANCE
    assert (by_hand - expected).abs().max().item() <= TOLERANCE
    n, cfg = tokens.shape[1], hf.config
    assert cache[hooks[0]].shape == (1, n, bridge.cfg.d_mlp)
    assert cache[hooks[1]].shape == (1, n, bridge.cfg.n_heads, bridge.cfg.d_model // bridge.cfg.n_heads)
    assert cache[hooks[2]].shape == (1, n, bridge.cfg.d_model)
    assert bridge.cfg.n_layers == n_layers(spec) == cfg.num_hidden_layers
    assert model_config(spec)["model_type"] == cfg.model_type
    assert context_length(spec) == cfg.max_position_embeddings


def test_config_questions_of_each_architecture(dirs: dict[str, Path]) -> None:
    """Only GPT-NeoX runs attention beside the MLP; Llama and Gemma blocks are sequential like GPT-2's."""
    assert parallel_attention(f"hf:{dirs['neox']}@step4")
    assert not any(parallel_attention(f"hf:{dirs[arch]}") for arch in PLAIN)
    assert model_config(f"hf:{dirs['llama']}")["vocab_size"] == len(load_tokenizer(f"hf:{dirs['llama']}"))


def test_checkpoint_subfolders_load_their_own_weights(dirs: dict[str, Path]) -> None:
    specs = [s.spec for s in expand_subjects(f"hf:{dirs['neox']}@*")]
    assert [local_dir(s) for s in specs] == [dirs["neox"] / f"step{step}" for step in NEOX_STEPS]
    tokens = _tokens(specs[0])
    with torch.no_grad():
        first, last = (load_model(s)(tokens) for s in specs)
    assert (first - last).abs().max().item() > TOLERANCE


def test_loading_is_offline_and_restores_the_hub_setting(dirs: dict[str, Path]) -> None:
    before = hub_constants.HF_HUB_OFFLINE
    load_model(f"hf:{dirs['gpt2']}")
    assert hub_constants.HF_HUB_OFFLINE == before
    assert local_dir("pythia-70m@step1000") is None


def test_subject_identity_hashes_the_weights(dirs: dict[str, Path], tmp_path: Path, tiny_model) -> None:
    step0, step4 = (subject_identity(f"hf:{dirs['neox']}@step{s}") for s in NEOX_STEPS)
    assert step0["revision"] == "step0" and step0["spec"].endswith("@step0")
    assert step0 == subject_identity(f"hf:{dirs['neox']}@step0")
    assert step0["weights_sha256"] != step4["weights_sha256"]
    copy = shutil.copytree(dirs["gpt2"], tmp_path / "gpt2")
    assert subject_identity(f"hf:{copy}")["weights_sha256"] == subject_identity(f"hf:{dirs['gpt2']}")["weights_sha256"]
    tiny_model("gpt2", seed=2).save_pretrained(copy)
    assert subject_identity(f"hf:{copy}")["weights_sha256"] != subject_identity(f"hf:{dirs['gpt2']}")["weights_sha256"]
    with pytest.raises(FileNotFoundError, match="holds no complete set of weight files"):
        subject_identity(f"hf:{shutil.copytree(dirs['gpt2'], tmp_path / 'bare', ignore=shutil.ignore_patterns('*.safetensors'))}")


def _cache_revision(cache: Path, repo: str, revision: str, commit: str, files: dict[str, Path]) -> None:
    """Files put into the Hugging Face cache layout: ``blobs/<sha256>``, ``snapshots/<commit>/<name>`` linking
    to the blob, ``refs/<revision>`` naming the commit."""
    repo_dir = cache / f"models--{repo.replace('/', '--')}"
    for name, source in files.items():
        blob = repo_dir / "blobs" / hashlib.sha256(source.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, blob)
        link = repo_dir / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / revision).write_text(commit)


def test_hub_identity_hashes_the_cached_revision(dirs: dict[str, Path], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub checkpoint is hashed from the local Hugging Face cache (never downloaded): None until its
    weights are there, then the same hash as the same files in a local directory — so two revisions
    holding the same weights (Pythia's duplicated steps) are one checkpoint to a sweep."""
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    repo, local = "EleutherAI/pythia-70m", dirs["neox"] / "step4"
    config, weights = {"config.json": local / "config.json"}, {"model.safetensors": local / "model.safetensors"}
    assert subject_identity("pythia-70m@step1000") == {"spec": "pythia-70m@step1000", "revision": "step1000",
                                                       "weights_sha256": None}
    _cache_revision(tmp_path / "hub", repo, "step1000", "a" * 40, config)  # the config alone: weights not fetched
    assert subject_identity("pythia-70m@step1000")["weights_sha256"] is None
    _cache_revision(tmp_path / "hub", repo, "step1000", "a" * 40, weights)
    digest = subject_identity("pythia-70m@step1000")["weights_sha256"]
    assert digest == subject_identity(f"hf:{dirs['neox']}@step4")["weights_sha256"]
    _cache_revision(tmp_path / "hub", repo, "step2000", "b" * 40, {**config, **weights})
    assert subject_identity("pythia-70m@step2000")["weights_sha256"] == digest
    _cache_revision(tmp_path / "hub", repo, "step3000", "c" * 40, {**config, **weights})
    index = tmp_path / "model.safetensors.index.json"  # a sharded revision with a shard not yet downloaded
    index.write_text(json.dumps({"weight_map": {"a": "model.safetensors", "b": "model-2.safetensors"}}))
    _cache_revision(tmp_path / "hub", repo, "step3000", "c" * 40, {index.name: index})
    assert subject_identity("pythia-70m@step3000")["weights_sha256"] is None

    subjects = tuple(parse_subject(f"pythia-70m@step{s}") for s in (1000, 2000, 3000))
    settings = load_settings()
    session = Session(settings, StudyConfig(), MeasurementCache(None))
    trajectory = session.trajectory(Target(CLAIMS["C4"], "pythia-70m@*", subjects, ("pythia-70m",)))
    assert trajectory.duplicates == {"pythia-70m@step2000": "pythia-70m@step1000"}
    assert [s.label for s in trajectory.checkpoints] == ["pythia-70m@step1000", "pythia-70m@step3000"]


def test_zoo_checkpoints_load_through_the_same_path(tiny_zoo) -> None:
    root = tiny_zoo("neox-tiny")
    spec = zoo.ZOO["neox-tiny"]
    subject = parse_subject(f"zoo:{spec.name}@step{spec.steps[-1]}")
    assert local_dir(subject) == root / spec.name / f"step{spec.steps[-1]}"
    bridge = load_model(subject)
    assert bridge.cfg.n_layers == spec.n_layers and bridge.cfg.d_vocab == spec.vocab_size
    assert subject_identity(subject)["weights_sha256"]
