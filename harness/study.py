"""A study: one subject with its tokenizer, frequencies, evaluation data and cached measurements.

This is the only place where subjects, data, the cache and torch measurements meet.
Claim tests receive a ``Study`` from a fixture and call its measurement methods; each
method returns cached numpy arrays (the model is loaded only when a measurement is
missing, and released after). Cache keys hold the subject's identity (weight hash for
local directories), dtype, the evaluation-data fingerprint, the measurement's name,
version and parameters, and seeds.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import corpus, evaldata, heads, influence, loading, regimes, weights
from harness.activations import record_activations
from harness.cache import MeasurementCache
from harness.evaldata import EvalData, EvalSpec, PositionSelection
from harness.frequencies import TokenFrequencies
from harness.subjects import Subject

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}


@dataclass(frozen=True)
class StudyConfig:
    """Everything besides the subject that a measurement depends on."""

    eval: EvalSpec = EvalSpec()
    rare_definition: str = "longtail_50"
    conditioning: str = "target"
    n_common_repeats: int = 3
    selection_seed: int = 0
    min_rare_positions: int = 200
    dtype: str = "float32"
    eval_corpus: str | None = None
    token_counts: str | None = None
    frequency_corpus: str | None = None
    influence_mode: str = "exact"


def _read_texts(path: str) -> list[str]:
    """A text file, or every ``*.txt`` file of a directory (sorted), as documents."""
    p = Path(path)
    files = sorted(p.glob("**/*.txt")) if p.is_dir() else [p]
    if not files or not all(f.is_file() for f in files):
        raise FileNotFoundError(f"no text corpus at {path!r}: give a .txt file or a directory of .txt files")
    return [f.read_text(encoding="utf-8", errors="replace") for f in files]


_EVAL_DATA: dict[tuple, EvalData] = {}
"""Evaluation data of this process, per (family, EvalSpec, corpus): identical for every checkpoint."""


class Study:
    """One subject under study; measurements are cached on disk and in memory."""

    def __init__(self, subject: Subject, config: StudyConfig, cache: MeasurementCache, device: str = "cpu"):
        self.subject = subject
        self.config = config
        self.cache = cache
        self.device = device
        self._rare_fits: dict[int, regimes.RegimeFit] = {}

    # -- inputs -------------------------------------------------------------------
    @cached_property
    def tokenizer(self):
        return loading.load_tokenizer(self.subject)

    @cached_property
    def identity(self) -> dict[str, Any]:
        return loading.subject_identity(self.subject)

    @cached_property
    def frequencies(self) -> TokenFrequencies:
        """Unigram counts of the subject's training corpus: given, counted, the zoo's, or next to a local model."""
        if self.config.token_counts:
            return TokenFrequencies.from_npy(self.config.token_counts, len(self.tokenizer))
        if self.config.frequency_corpus:
            return TokenFrequencies.from_texts(_read_texts(self.config.frequency_corpus), self.tokenizer)
        if self.subject.kind == "zoo":
            return TokenFrequencies.for_zoo(self.subject.family.split(":", 1)[1])
        local = loading.local_dir(self.subject)
        for candidate in ([local, local.parent] if local is not None else []):
            if (candidate / "token_counts.npy").is_file():
                return TokenFrequencies.from_npy(candidate / "token_counts.npy", len(self.tokenizer))
        raise ValueError(
            f"no token frequencies for {self.subject.spec}: rare and common tokens are defined by the unigram "
            f"counts of the model's training corpus. Give --token-counts FILE.npy (one count per vocabulary id) "
            f"or --frequency-corpus PATH (text counted with the subject's tokenizer)"
            + ("" if local is None else f", or put token_counts.npy in {local}")
        )

    @cached_property
    def eval_data(self) -> EvalData:
        """The evaluation sequences; built once per family (every checkpoint shares the tokenizer)."""
        n_ctx = loading.context_length(self.subject)
        if self.config.eval.seq_len > n_ctx:
            raise ValueError(
                f"evaluation sequences of {self.config.eval.seq_len} tokens exceed {self.subject.spec}'s context of "
                f"{n_ctx} tokens; use --eval-length {n_ctx} or less"
            )
        memo_key = (self.subject.family, self.config.eval, self.config.eval_corpus)
        if memo_key not in _EVAL_DATA:
            texts = _read_texts(self.config.eval_corpus) if self.config.eval_corpus else [
                d.text for d in corpus.split_documents(corpus.documents())[1]
            ]
            tok = self.tokenizer
            bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
            eos = tok.eos_token_id if tok.eos_token_id is not None else bos
            special = sorted({i for i in (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) if i is not None})
            _EVAL_DATA[memo_key] = evaldata.build_eval_data(texts, tok, self.config.eval, bos_id=bos, eos_id=eos,
                                                            special_ids=special)
        return _EVAL_DATA[memo_key]

    @cached_property
    def rare_positions(self) -> np.ndarray:
        """[n_seq, seq_len] bool: valid positions whose target (or input) token is rare."""
        mask = self.frequencies.rare_mask(self.config.rare_definition)
        return self.eval_data.positions(mask, self.config.conditioning)

    @cached_property
    def common_positions(self) -> np.ndarray:
        """[n_seq, seq_len] bool: valid positions whose target (or input) token is common."""
        return self.eval_data.positions(self.frequencies.common(), self.config.conditioning)

    @cached_property
    def selection(self) -> PositionSelection:
        return evaldata.select_positions(
            self.rare_positions, self.common_positions, self.config.n_common_repeats,
            self.config.selection_seed, self.config.min_rare_positions,
        )

    def sample_sizes(self) -> dict[str, int]:
        """Sequences, valid/rare/common positions and selected positions, for records."""
        return {
            "sequences": int(self.eval_data.tokens.shape[0]),
            "sequence_length": int(self.eval_data.tokens.shape[1]),
            "valid_positions": int(self.eval_data.valid.sum()),
            "rare_positions": int(self.rare_positions.sum()),
            "common_positions": int(self.common_positions.sum()),
            "common_positions_per_repeat": int(self.selection.n_common(0)),
        }

    # -- cache plumbing -------------------------------------------------------------
    def _weights_key(self, name: str, version: int, **params: Any) -> dict[str, Any]:
        """Cache key of a measurement of the weights alone: subject identity, dtype, parameters."""
        return {"measurement": name, "version": version, "subject": self.identity, "dtype": self.config.dtype,
                "params": params}

    def _key(self, name: str, version: int, **params: Any) -> dict[str, Any]:
        """Cache key of a measurement on the evaluation data (sequences, frequencies, selection)."""
        return {
            **self._weights_key(name, version, **params),
            "eval": self.eval_data.fingerprint,
            "frequencies": hashlib.sha256(np.ascontiguousarray(self.frequencies.counts).tobytes()).hexdigest()[:16],
            "rare_definition": self.config.rare_definition,
            "conditioning": self.config.conditioning,
            "selection": [self.config.n_common_repeats, self.config.selection_seed],
        }

    def load_model(self):
        """The subject as a TransformerLens model on this study's device and dtype."""
        return loading.load_model(self.subject, device=self.device, dtype=DTYPES[self.config.dtype])

    # -- measurements ---------------------------------------------------------------
    def activations(self) -> dict[str, np.ndarray]:
        """Final-MLP activations, final residuals and clean loss at the selected positions (cached)."""
        def compute():
            model = self.load_model()
            arrays = record_activations(model, self.eval_data, self.selection)
            return arrays, {"subject": self.subject.spec}
        return self.cache.get_or_compute("activations", self._key("activations", 1), compute).arrays

    def influence(self, targets: str = "rare", ablation: str = "mean") -> dict[str, np.ndarray]:
        """Per-sequence neuron influence at rare- or common-target positions (cached), in nats.

        ``mean`` / ``abs`` [n_sets, n_seq, d_mlp]: per-sequence mean of Δℓ_n(t) (signed /
        absolute); ``count`` [n_sets, n_seq] positions behind each mean. ``targets="rare"`` has one
        set (every rare-target position); ``"common"`` one per matched common subsample
        (``n_common_repeats``). Resample ablation draws replacements within the same positions.
        """
        sets = self._position_sets(targets)

        def compute():
            act, readout = self.activations(), self._readout()
            n_seq = self.eval_data.tokens.shape[0]
            out: dict[str, list[np.ndarray]] = {"mean": [], "abs": [], "count": []}
            for g in sets:
                sub = self._subset(act, [g])
                delta, seq = torch.as_tensor(self._delta(sub, readout, ablation)), torch.as_tensor(sub["seq"])
                everywhere = torch.ones(seq.numel(), dtype=torch.bool)
                for absolute, key in ((False, "mean"), (True, "abs")):
                    m, c = influence.per_sequence_means(delta, seq, everywhere, absolute=absolute, n_seq=n_seq)
                    out[key].append(m.numpy())
                out["count"].append(c.numpy())
            return {k: np.stack(v) for k, v in out.items()}, {"ablation": ablation, "targets": targets}
        key = self._key("influence", 3, targets=targets, ablation=ablation, mode=self.config.influence_mode)
        return self.cache.get_or_compute("influence", key, compute).arrays

    def influence_null(self, n_permutations: int, seed: int, ablation: str = "mean") -> np.ndarray:
        """Rare-target influence [n_permutations, d_mlp] (nats) with the final MLP's output rows permuted.

        Permuting W_out's rows across neurons breaks each neuron's read→write pairing and keeps
        the weight distribution (methods.md §3.3). The clean residual is recomputed exactly
        from the cached activations: r' = r + a·(W_out[π] − W_out).
        """
        def compute():
            act = self._subset(self.activations(), self._position_sets("rare"))
            readout = self._readout()
            w_out = readout.W_out
            acts = torch.as_tensor(act["acts"], device=w_out.device, dtype=w_out.dtype)
            rng = np.random.default_rng(seed)
            curves = []
            for _ in range(n_permutations):
                perm = torch.as_tensor(rng.permutation(w_out.shape[0]), device=w_out.device)
                permuted = dataclasses.replace(readout, W_out=w_out[perm])
                moved = dict(act, resid=act["resid"] + (acts @ (w_out[perm] - w_out)).cpu().numpy())
                curves.append(self._delta(moved, permuted, ablation).mean(axis=0))
            return {"influence": np.stack(curves)}, {"ablation": ablation}
        key = self._key("influence_null", 2, ablation=ablation, n=n_permutations, seed=seed,
                        mode=self.config.influence_mode)
        return self.cache.get_or_compute("influence_null", key, compute).arrays["influence"]

    def _position_sets(self, targets: str) -> list[int]:
        """Selection group ids of ``targets``: [0] for rare, [1 … n_common_repeats] for common."""
        if targets == "rare":
            return [0]
        if targets == "common":
            return list(range(1, self.config.n_common_repeats + 1))
        raise ValueError(f"targets must be 'rare' or 'common', got {targets!r}")

    @staticmethod
    def _subset(act: dict[str, np.ndarray], sets: list[int]) -> dict[str, np.ndarray]:
        """The cached activations at the positions of the given selection groups (``mean_act`` kept)."""
        keep = np.isin(act["group"], sets)
        out = {k: act[k][keep] for k in ("resid", "acts", "targets", "seq", "group")}
        out["mean_act"] = act["mean_act"]
        return out

    def _readout(self) -> "influence.Readout":
        """The final MLP's write rows, final LayerNorm and unembedding, on this study's device."""
        model = self.load_model()
        readout = influence.final_readout(model)
        del model
        return readout.to(self.device, torch.float32)

    def _delta(self, act: dict[str, np.ndarray], readout, ablation: str) -> np.ndarray:
        """Δℓ [n_positions, d_mlp] (nats) at every position of ``act`` (cached activations)."""
        dev = self.device
        acts = torch.as_tensor(act["acts"], device=dev)
        value = influence.ablation_values(
            ablation, acts, mean_act=torch.as_tensor(act["mean_act"], device=dev), seed=self.config.selection_seed
        )
        delta = influence.influence(
            torch.as_tensor(act["resid"], device=dev), acts, torch.as_tensor(act["targets"], device=dev),
            readout, value, mode=self.config.influence_mode,
        )
        return delta.float().cpu().numpy()

    def influence_curve(self, targets: str = "rare", repeat: int = 0, ablation: str = "mean") -> np.ndarray:
        """Mean Δℓ [d_mlp] (nats) over every position of one target set (a common set: one matched repeat)."""
        inf = self.influence(targets, ablation)
        everything = np.arange(inf["count"].shape[1])[None]
        return regimes.pooled_influence(inf["mean"][repeat], inf["count"][repeat], everything)[0]

    def rare_influence(self, ablation: str = "mean") -> np.ndarray:
        """Mean Δℓ over all rare-target positions [d_mlp] (nats): the curve C1 ranks."""
        return self.influence_curve("rare", 0, ablation)

    def rare_fit(self, min_segment_points: int) -> regimes.RegimeFit:
        """The 1/2/3-regime fits of the rare-target influence curve (computed once per study)."""
        if min_segment_points not in self._rare_fits:
            self._rare_fits[min_segment_points] = regimes.fit_regimes(
                self.rare_influence(), min_segment_points=min_segment_points)
        return self._rare_fits[min_segment_points]

    def specialists(self, min_segment_points: int) -> np.ndarray:
        """Neuron ids of the specialist plateau: ranks before the first breakpoint of the 3-segment fit."""
        return self.rare_fit(min_segment_points).specialist_ids

    def rare_activations(self) -> tuple[np.ndarray, np.ndarray]:
        """Final-MLP activations at rare-target positions [n_rare, d_mlp] and their sequence ids [n_rare]."""
        act = self.activations()
        rare = act["group"] == 0
        return act["acts"][rare].astype(np.float64), act["seq"][rare]

    def head_ablation(self, layers: tuple[int, ...] | None = None, ablation: str = "mean") -> dict[str, np.ndarray]:
        """Per-sequence losses with each attention head, and each whole layer, ablated (cached; see heads.py)."""
        def compute():
            model = self.load_model()
            arrays = heads.head_ablation(
                model, torch.as_tensor(self.eval_data.tokens), torch.as_tensor(self.rare_positions),
                torch.as_tensor(self.common_positions), layers=layers, ablation=ablation,
            )
            return arrays, {"ablation": ablation}
        key = self._key("head_ablation", 1, layers=list(layers) if layers else None, ablation=ablation)
        return self.cache.get_or_compute("head_ablation", key, compute).arrays

    def final_mlp_weights(self) -> dict[str, np.ndarray]:
        """The final MLP's read rows ``W_read`` and write rows ``W_write``, both [d_mlp, d_model] (cached)."""
        def compute():
            model = self.load_model()
            w_read, w_write, b_in = weights.final_mlp_weights(model)
            return {"W_read": w_read, "W_write": w_write, "b_in": b_in}, {}
        return self.cache.get_or_compute("final_mlp_weights", self._weights_key("final_mlp_weights", 1), compute).arrays

    def at_step(self, step: int) -> "Study":
        """The same study on another checkpoint of the subject's family (same sequences, same cache)."""
        return Study(dataclasses.replace(self.subject, step=step), self.config, self.cache, self.device)

    @property
    def architecture(self) -> str:
        """``gpt_neox`` or ``gpt2`` (or the Hugging Face model type of another subject)."""
        return loading.architecture(self.subject)

