"""The study glue on the tiny zoo and on tiny Llama-shaped directories: shared evaluation data that grow
until they hold enough rare positions, token counts of tokenizer or unembedding length, cached
activations, and influence end to end against a hooked forward pass."""

import numpy as np
import pytest
import torch

from harness.claims import CLAIMS
from harness.claims.runner import Session, targets
from harness.claims.settings import load_settings
from harness.claims.startup import StartupError, check_token_counts
from harness.data.evaldata import EvalSpec, TooFewPositionsError
from harness.measure import study as study_module
from harness.measure.cache import MeasurementCache
from harness.measure.study import Study, StudyConfig
from harness.subjects import parse_subject

CONFIG = StudyConfig(eval=EvalSpec(n_sequences=24, seq_len=64), min_rare_positions=50)
LARGE_VOCAB = 2048  # half the types are rare and seldom occur: 128 sequences hold too few rare targets

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def cache(tmp_path):
    return MeasurementCache(tmp_path / "cache")


@pytest.fixture(scope="module")
def llama(tmp_path_factory, one_thread, model_family):
    """A Llama-shaped family (step0/, step2/) trained on corpus rows, with token_counts.npy."""
    return model_family(tmp_path_factory.mktemp("llama"), "llama", (0, 2))


@pytest.fixture(scope="module")
def llama_large_vocab(tmp_path_factory, one_thread, model_family):
    """One Llama-shaped checkpoint with a 2,048-type vocabulary and its training counts."""
    return model_family(tmp_path_factory.mktemp("llama-large"), "llama", (0,), vocab_size=LARGE_VOCAB)


def test_every_checkpoint_of_a_family_gets_the_same_sequences(tiny_zoo, cache):
    tiny_zoo("neox-tiny")
    first = Study(parse_subject("zoo:neox-tiny@step0"), CONFIG, cache).eval_data
    study_module._EVAL_DATA.clear()  # rebuild from scratch for the other checkpoint
    last = Study(parse_subject("zoo:neox-tiny@step32"), CONFIG, cache).eval_data
    assert first is not last and first.fingerprint == last.fingerprint
    assert np.array_equal(first.tokens, last.tokens) and (first.tokens[:, 0] == 0).all()
    other_seed = Study(parse_subject("zoo:neox-tiny@step32"), StudyConfig(eval=EvalSpec(24, 64, seed=1)), cache)
    assert other_seed.eval_data.fingerprint != first.fingerprint


def _hooked_rare_influence(s: Study, neurons) -> list[float]:
    """Mean Δℓ (nats) over the rare-target positions of a forward pass with each neuron set to its mean."""
    act, model = s.activations(), s.load_model()
    tokens, targets_ = torch.as_tensor(s.eval_data.tokens), torch.as_tensor(s.eval_data.targets)
    rare, layer = torch.as_tensor(s.rare_positions), model.cfg.n_layers - 1
    with torch.no_grad():
        clean = torch.log_softmax(model(tokens).float(), -1)
    out = []
    for n in neurons:
        def ablate(post, hook, n=int(n)):
            post[..., n] = float(act["mean_act"][n])
            return post
        with torch.no_grad():
            logits = model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.mlp.hook_post", ablate)])
        ablated = torch.log_softmax(logits.float(), -1)
        t = targets_.clamp(min=0)[..., None]
        out.append(float((clean.gather(-1, t) - ablated.gather(-1, t)).squeeze(-1)[rare].mean()))
    return out


@pytest.mark.parametrize("family", ["zoo:neox-tiny", "zoo:gpt2-tiny", "llama"])
def test_rare_influence_equals_a_hooked_forward_pass(tiny_zoo, llama, cache, family):
    """End to end: selection, ā over all valid positions, exact sweep and pooling vs one hooked pass
    (GPT-NeoX and GPT-2 with a final LayerNorm, Llama with a final RMSNorm)."""
    tiny_zoo("neox-tiny", "gpt2-tiny")
    s = Study(parse_subject(f"hf:{llama}@step2" if family == "llama" else f"{family}@step32"), CONFIG, cache)
    influence = s.rare_influence().pooled()
    neurons = np.argsort(-influence)[:3]
    hooked = _hooked_rare_influence(s, neurons)
    assert np.abs(np.array(hooked) - influence[neurons]).max() < 1e-5
    assert s.cache.get_or_compute("influence", s._key("influence", 3, targets="rare", ablation="mean",
                                                      mode="exact"), lambda: pytest.fail("recomputed")).from_cache


def test_mean_activation_is_over_all_valid_positions(tiny_zoo, cache):
    tiny_zoo("gpt2-tiny")
    s = Study(parse_subject("zoo:gpt2-tiny@step32"), CONFIG, cache)
    model = s.load_model()
    layer = model.cfg.n_layers - 1
    _, run = model.run_with_cache(torch.as_tensor(s.eval_data.tokens), names_filter=f"blocks.{layer}.mlp.hook_post")
    post = run[f"blocks.{layer}.mlp.hook_post"].numpy()
    assert np.allclose(s.activations()["mean_act"], post[s.eval_data.valid].mean(axis=0), atol=1e-5)
    act = s.activations()
    assert np.allclose(act["acts"], post[act["seq"], act["pos"]], atol=1e-6)


def test_zoo_frequencies_are_the_exact_training_counts(tiny_zoo, cache):
    root = tiny_zoo("gpt2-tiny")
    freqs = Study(parse_subject("zoo:gpt2-tiny@step32"), CONFIG, cache).frequencies
    assert np.array_equal(freqs.counts, np.load(root / "gpt2-tiny" / "token_counts.npy"))


def test_hub_subject_without_counts_says_how_to_provide_them(cache):
    with pytest.raises(ValueError, match=r"--token-counts FILE\.npy.*--frequency-corpus"):
        Study(parse_subject("pythia-70m"), StudyConfig(), cache).frequencies


def test_token_counts_of_tokenizer_or_unembedding_length(tmp_path, tiny_model, save_model, tiny_tokenizer, cache):
    """A model whose unembedding has more rows than its tokenizer has ids (Pythia: 50,304 vs 50,277):
    counts of either length give the same frequencies, one per row, the extra rows at 0; any other
    length is refused at start-up with one line naming both sizes."""
    n_ids = len(tiny_tokenizer)
    directory = save_model(tiny_model("llama", vocab_size=n_ids + 8), tmp_path / "padded")
    subject = parse_subject(f"hf:{directory}")
    counts = np.random.default_rng(0).poisson(20.0, n_ids) + 1
    files = {}
    for name, values in (("ids", counts), ("rows", np.concatenate([counts, np.zeros(8, dtype=counts.dtype)])),
                         ("neither", np.ones(n_ids + 1, dtype=np.int64))):
        files[name] = tmp_path / f"{name}.npy"
        np.save(files[name], values)
    studies = [Study(subject, StudyConfig(token_counts=str(files[k])), cache) for k in ("ids", "rows")]
    assert studies[0].frequencies.vocab_size == n_ids + 8
    assert np.array_equal(studies[0].frequencies.counts, studies[1].frequencies.counts)
    assert (studies[0].frequencies.counts[n_ids:] == 0).all()
    for k in ("ids", "rows"):
        check_token_counts(str(files[k]), [subject])
    with pytest.raises(StartupError, match=rf"holds {n_ids + 1} counts; .* has {n_ids} tokenizer ids and "
                                           rf"{n_ids + 8} unembedding rows") as err:
        check_token_counts(str(files["neither"]), [subject])
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=rf"\({n_ids + 8},\) unembedding rows or \({n_ids},\) tokenizer ids"):
        Study(subject, StudyConfig(token_counts=str(files["neither"])), cache).frequencies


def test_evaluation_data_grow_until_they_hold_enough_rare_positions(llama_large_vocab, tmp_path):
    """128 sequences of a 2,048-type vocabulary hold too few rare targets: the data double until they
    do, and the record says how many sequences were asked for and how many were used."""
    settings = load_settings(overrides={"min_rare_positions": 1000, "max_eval_sequences": 1024, "n_bootstrap": 20})
    config = StudyConfig(eval=EvalSpec(n_sequences=128, seq_len=64), min_rare_positions=1000,
                         max_eval_sequences=1024)
    subject = parse_subject(f"hf:{llama_large_vocab}")
    asked = Study(subject, StudyConfig(eval=config.eval, min_rare_positions=0), MeasurementCache(None))
    assert int(asked.rare_positions.sum()) < 1000  # the asked-for data alone are too few
    session = Session(settings, config, MeasurementCache(tmp_path / "cache"))
    [target] = targets([CLAIMS["C3"]], [subject])
    record = session.evaluate(target)
    sizes = record.sample_sizes
    assert sizes["sequences_asked"] == 128 and sizes["sequences"] in (256, 512, 1024)
    assert sizes["rare_positions"] >= 1000
    grown = session.study(subject).eval_data
    assert np.array_equal(grown.tokens[:, 0], np.zeros(sizes["sequences"]))  # BOS-led sequences of one draw


def test_growth_stops_at_the_limit_or_the_corpus_and_too_few_positions_still_fire(llama_large_vocab, tmp_path, cache):
    subject = parse_subject(f"hf:{llama_large_vocab}")
    capped = Study(subject, StudyConfig(eval=EvalSpec(128, 64), min_rare_positions=10**6, max_eval_sequences=256),
                   cache)
    assert capped.n_sequences == 256
    with pytest.raises(TooFewPositionsError, match=r"rare-target positions.*needs >= 1000000"):
        capped.selection
    small = tmp_path / "small.txt"  # room for about 20 sequences of 64 tokens
    small.write_text(" ".join(["To be, or not to be, that is the question: whether 'tis nobler in the mind"] * 70))
    starved = Study(subject, StudyConfig(eval=EvalSpec(4, 64), min_rare_positions=10**6, eval_corpus=str(small)),
                    cache)
    assert 4 < starved.n_sequences < 64
    with pytest.raises(TooFewPositionsError, match="rare-target positions"):
        starved.selection


def test_too_few_rare_positions_and_too_long_sequences_are_clear_errors(tiny_zoo, cache):
    tiny_zoo("neox-tiny")
    few = Study(parse_subject("zoo:neox-tiny"), StudyConfig(eval=EvalSpec(8, 64), min_rare_positions=10**6), cache)
    with pytest.raises(TooFewPositionsError, match="rare-target positions"):
        few.selection
    long = Study(parse_subject("zoo:neox-tiny"), StudyConfig(eval=EvalSpec(8, 512)), cache)
    with pytest.raises(ValueError, match="exceed .* context of 64 tokens"):
        long.eval_data


def test_a_claims_provenance_does_not_depend_on_which_claim_computed_first(tiny_zoo, cache):
    """Memoized results replay the measurements they read, nested memos included, and a measurement read
    to compute another is not listed: C1's provenance is the same whether it runs first or after C5."""
    tiny_zoo("neox-tiny")
    settings = load_settings(overrides={"n_bootstrap": 20, "n_null": 20, "n_null_curves": 19, "louvain_seeds": 1,
                                        "min_rare_positions": 50})

    def provenance(order: list[str]) -> dict[str, str]:
        study = Study(parse_subject("zoo:neox-tiny@step32"), CONFIG, cache)
        for claim_id in order:
            study.begin_claim()
            CLAIMS[claim_id].evaluate(study, settings)
        return study.used_measurements()

    alone = provenance(["C1"])
    assert provenance(["C5", "C1"]) == alone
    assert {"influence", "null_curves"} <= {k.split("#")[0] for k in alone}
