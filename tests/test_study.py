"""The study glue on the tiny zoo: shared evaluation data, cached activations, influence end to end."""

import numpy as np
import pytest
import torch

from harness.measure import study as study_module
from harness.measure.cache import MeasurementCache
from harness.data.evaldata import EvalSpec, TooFewPositionsError
from harness.measure.study import Study, StudyConfig
from harness.subjects import parse_subject

CONFIG = StudyConfig(eval=EvalSpec(n_sequences=24, seq_len=64), min_rare_positions=50)


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RARE_ZOO_DIR", str(tmp_path_factory.mktemp("zoo")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture
def cache(tmp_path):
    return MeasurementCache(tmp_path / "cache")


def test_every_checkpoint_of_a_family_gets_the_same_sequences(tiny_zoo, cache):
    first = Study(parse_subject("zoo:neox-tiny@step0"), CONFIG, cache).eval_data
    study_module._EVAL_DATA.clear()  # rebuild from scratch for the other checkpoint
    last = Study(parse_subject("zoo:neox-tiny@step32"), CONFIG, cache).eval_data
    assert first is not last and first.fingerprint == last.fingerprint
    assert np.array_equal(first.tokens, last.tokens) and (first.tokens[:, 0] == 0).all()
    other_seed = Study(parse_subject("zoo:neox-tiny@step32"), StudyConfig(eval=EvalSpec(24, 64, seed=1)), cache)
    assert other_seed.eval_data.fingerprint != first.fingerprint


@pytest.mark.parametrize("family", ["zoo:neox-tiny", "zoo:gpt2-tiny"])
def test_rare_influence_equals_a_hooked_forward_pass(tiny_zoo, cache, family):
    """End to end: selection, ā over all valid positions, exact sweep and pooling vs one hooked pass."""
    s = Study(parse_subject(f"{family}@step32"), CONFIG, cache)
    influence = s.rare_influence()
    act = s.activations()
    model = s.load_model()
    tokens = torch.as_tensor(s.eval_data.tokens)
    targets = torch.as_tensor(s.eval_data.targets)
    rare = torch.as_tensor(s.rare_positions)
    layer = model.cfg.n_layers - 1
    with torch.no_grad():
        clean = torch.log_softmax(model(tokens).float(), -1)
    for n in np.argsort(-influence)[:3]:
        def ablate(post, hook, n=int(n)):
            post[..., n] = float(act["mean_act"][n])
            return post
        with torch.no_grad():
            logits = model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.mlp.hook_post", ablate)])
        ablated = torch.log_softmax(logits.float(), -1)
        t = targets.clamp(min=0)[..., None]
        delta = (clean.gather(-1, t) - ablated.gather(-1, t)).squeeze(-1)[rare]
        assert abs(float(delta.mean()) - influence[n]) < 1e-4
    assert s.cache.get_or_compute("influence", s._key("influence", 3, targets="rare", ablation="mean",
                                                      mode="exact"), lambda: pytest.fail("recomputed")).from_cache


def test_mean_activation_is_over_all_valid_positions(tiny_zoo, cache):
    s = Study(parse_subject("zoo:gpt2-tiny@step32"), CONFIG, cache)
    model = s.load_model()
    layer = model.cfg.n_layers - 1
    _, run = model.run_with_cache(torch.as_tensor(s.eval_data.tokens), names_filter=f"blocks.{layer}.mlp.hook_post")
    post = run[f"blocks.{layer}.mlp.hook_post"].numpy()
    assert np.allclose(s.activations()["mean_act"], post[s.eval_data.valid].mean(axis=0), atol=1e-5)
    act = s.activations()
    assert np.allclose(act["acts"], post[act["seq"], act["pos"]], atol=1e-6)


def test_hub_subject_without_counts_says_how_to_provide_them(cache):
    with pytest.raises(ValueError, match=r"--token-counts FILE\.npy.*--frequency-corpus"):
        Study(parse_subject("pythia-70m"), StudyConfig(), cache).frequencies


def test_too_few_rare_positions_and_too_long_sequences_are_clear_errors(tiny_zoo, cache):
    few = Study(parse_subject("zoo:neox-tiny"), StudyConfig(eval=EvalSpec(8, 64), min_rare_positions=10**6), cache)
    with pytest.raises(TooFewPositionsError, match="rare-target positions"):
        few.selection
    long = Study(parse_subject("zoo:neox-tiny"), StudyConfig(eval=EvalSpec(8, 512)), cache)
    with pytest.raises(ValueError, match="exceed .* context of 64 tokens"):
        long.eval_data
