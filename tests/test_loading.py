"""Loading: local GPT-NeoX and GPT-2 directories load offline as TransformerBridges whose
logits, hooks and final LayerNorm are the Hugging Face model's own."""

from __future__ import annotations

import shutil
from pathlib import Path

import huggingface_hub.constants as hub_constants
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from harness import zoo
from harness.subjects.identity import subject_identity
from harness.subjects.loading import REQUIRED_HOOKS, load_model, load_tokenizer, local_dir
from harness.subjects import expand_subjects, parse_subject

TOLERANCE = 1e-4  # max |logit difference| between the bridge and Hugging Face, float32
VOCAB, D_MODEL, N_LAYERS, N_HEADS, D_MLP, N_CTX = 320, 64, 2, 4, 128, 64
TEXT = "the quick brown fox jumps over the lazy dog while the cat sleeps"
NEOX_STEPS = (0, 4)


def _tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained here; id 0 (<|endoftext|>) is BOS, EOS and unknown."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [f"{TEXT} {i}" for i in range(50)]
    trainer = trainers.BpeTrainer(vocab_size=VOCAB - 20, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>")


def _neox(seed: int) -> PreTrainedModel:
    torch.manual_seed(seed)
    return GPTNeoXForCausalLM(GPTNeoXConfig(
        vocab_size=VOCAB, hidden_size=D_MODEL, num_hidden_layers=N_LAYERS, num_attention_heads=N_HEADS,
        intermediate_size=D_MLP, max_position_embeddings=N_CTX, rotary_pct=0.25, use_parallel_residual=True,
        bos_token_id=0, eos_token_id=0))


def _gpt2(seed: int) -> PreTrainedModel:
    torch.manual_seed(seed)  # default dropout 0.1: wrong in train mode, so eval mode is tested
    return GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_embd=D_MODEL, n_layer=N_LAYERS, n_head=N_HEADS,
                                      n_inner=D_MLP, n_positions=N_CTX, bos_token_id=0, eos_token_id=0))


def _save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, path: Path) -> Path:
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``neox``: step0/ and step4/ checkpoints (different seeds); ``gpt2``: one plain directory."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("models")
    tokenizer = _tokenizer()
    for step in NEOX_STEPS:
        _save(_neox(seed=step), tokenizer, root / "neox" / f"step{step}")
    _save(_gpt2(seed=1), tokenizer, root / "gpt2")
    return {"neox": root / "neox", "gpt2": root / "gpt2"}


def _tokens(spec: str) -> torch.Tensor:
    tokenizer = load_tokenizer(spec)
    return torch.tensor([[tokenizer.bos_token_id, *tokenizer(TEXT, add_special_tokens=False).input_ids]])


def _final_norm(hf: PreTrainedModel) -> torch.nn.Module:
    return hf.gpt_neox.final_layer_norm if hf.config.model_type == "gpt_neox" else hf.transformer.ln_f


@pytest.mark.parametrize("which", ["neox@step4", "gpt2"])
def test_bridge_matches_hugging_face(dirs: dict[str, Path], which: str) -> None:
    name, _, revision = which.partition("@")
    spec = f"hf:{dirs[name]}" + (f"@{revision}" if revision else "")
    bridge = load_model(spec)
    hf = AutoModelForCausalLM.from_pretrained(local_dir(spec), attn_implementation="eager").eval()
    tokens = _tokens(spec)
    hooks = [h.format(layer=N_LAYERS - 1) for h in REQUIRED_HOOKS]
    with torch.no_grad():
        logits, cache = bridge.run_with_cache(tokens, names_filter=hooks)
        expected = hf(tokens).logits
        # the bridge keeps the real final LayerNorm: unembedding its input by hand gives the logits
        by_hand = hf.get_output_embeddings()(_final_norm(hf)(cache["ln_final.hook_in"]))
    assert not any(m.training for m in bridge.modules())
    assert (logits - expected).abs().max().item() <= TOLERANCE
    assert (by_hand - expected).abs().max().item() <= TOLERANCE
    n = tokens.shape[1]
    assert cache[hooks[0]].shape == (1, n, D_MLP)
    assert cache[hooks[1]].shape == (1, n, N_HEADS, D_MODEL // N_HEADS)
    assert cache[hooks[2]].shape == (1, n, D_MODEL)


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


def test_subject_identity_hashes_the_weights(dirs: dict[str, Path], tmp_path: Path) -> None:
    step0, step4 = (subject_identity(f"hf:{dirs['neox']}@step{s}") for s in NEOX_STEPS)
    assert step0["revision"] == "step0" and step0["spec"].endswith("@step0")
    assert step0 == subject_identity(f"hf:{dirs['neox']}@step0")
    assert step0["weights_sha256"] != step4["weights_sha256"]
    copy = shutil.copytree(dirs["gpt2"], tmp_path / "gpt2")
    assert subject_identity(f"hf:{copy}")["weights_sha256"] == subject_identity(f"hf:{dirs['gpt2']}")["weights_sha256"]
    _gpt2(seed=2).save_pretrained(copy)
    assert subject_identity(f"hf:{copy}")["weights_sha256"] != subject_identity(f"hf:{dirs['gpt2']}")["weights_sha256"]
    hub = subject_identity("pythia-70m@step1000")
    assert hub == {"spec": "pythia-70m@step1000", "revision": "step1000", "weights_sha256": None}


@pytest.mark.slow
def test_zoo_checkpoints_load_through_the_same_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RARE_ZOO_DIR", str(tmp_path))
    spec = zoo.ZOO["neox-tiny"]
    subject = parse_subject(f"zoo:{spec.name}@step{spec.steps[-1]}")
    assert local_dir(subject) == tmp_path / spec.name / f"step{spec.steps[-1]}"
    bridge = load_model(subject)
    assert bridge.cfg.n_layers == spec.n_layers and bridge.cfg.d_vocab == spec.vocab_size
    assert subject_identity(subject)["weights_sha256"]
