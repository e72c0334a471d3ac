"""A study: one subject with its tokenizer, frequencies, evaluation data and cached measurements.

This is where subjects, data, the cache and the torch measurements meet. A ``Study`` is the
evidence a claim procedure reads (``harness.claims.evidence.Evidence``): every method returns
numpy arrays, computed once and cached on disk by content key (``MeasurementCache``) and kept in
memory for the study's lifetime (one hash-checked read per measurement, not one per call). The
model is loaded only when a measurement is missing. Cache keys hold the subject's identity
(weight hash for local directories), dtype, the evaluation-data fingerprint, the measurement's
name, version and parameters, and seeds; ``used_measurements()`` lists the digests a claim read,
for its record's provenance.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

import numpy as np
import torch

from harness import zoo
from harness.analysis.regimes import SequenceInfluence
from harness.analysis.spectra import MLPWeights
from harness.data import corpus, evaldata
from harness.data.evaldata import EvalData, EvalSpec, PositionSelection
from harness.data.frequencies import TokenFrequencies
from harness.measure import heads, influence, weights
from harness.measure.activations import record_activations
from harness.measure.cache import MeasurementCache, key_digest
from harness.subjects import Subject, family_steps, loading
from harness.subjects.identity import subject_identity

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}


@dataclass(frozen=True)
class StudyConfig:
    """Everything besides the subject that a measurement depends on.

    ``eval.n_sequences`` is where the evaluation data start; they grow (doubling) until they
    hold ``min_rare_positions`` rare-target positions or reach ``max_eval_sequences``.
    """

    eval: EvalSpec = EvalSpec()
    rare_definition: str = "longtail_50"
    conditioning: str = "target"
    n_common_repeats: int = 3
    selection_seed: int = 0
    min_rare_positions: int = 200
    max_eval_sequences: int = 1024
    dtype: str = "float32"
    eval_corpus: str | None = None
    token_counts: str | None = None
    frequency_corpus: str | None = None
    influence_mode: str = "exact"


@dataclass(frozen=True)
class NullCurves:
    """Null influence curves ``[n, d_mlp]`` (nats) of one target set: how they were made and how exact."""

    curves: np.ndarray
    permutation: str
    kernel: str
    approx_error: float | None

    def details(self) -> dict[str, Any]:
        return {"permutation": self.permutation, "kernel": self.kernel, "approx_error_nats": self.approx_error,
                "n": int(self.curves.shape[0])}


def read_texts(path: str) -> list[str]:
    """A text file, or every ``*.txt`` file of a directory (sorted), as documents."""
    p = Path(path)
    files = sorted(p.glob("**/*.txt")) if p.is_dir() else [p]
    if not files or not all(f.is_file() for f in files):
        raise FileNotFoundError(f"no text corpus at {path!r}: give a .txt file or a directory of .txt files")
    return [f.read_text(encoding="utf-8", errors="replace") for f in files]


_EVAL_DATA: dict[tuple, EvalData] = {}
"""Evaluation data of this process, per (family, config): identical for every checkpoint."""


class Study:
    """One subject under study; measurements are cached on disk and in memory."""

    def __init__(self, subject: Subject, config: StudyConfig, cache: MeasurementCache, device: str = "cpu",
                 progress: Callable[[str, str], None] | None = None):
        self.subject = subject
        self.progress = progress
        self.config = config
        self.cache = cache
        self.device = device
        self.memo: dict[str, Any] = {}  # the claims' memoized results (harness.claims.evidence.memoized)
        self._final_readout: "influence.Readout | None" = None
        self._arrays: dict[str, dict[str, np.ndarray]] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._used: dict[str, str] = {}
        self._frames: list[dict[str, str]] = []
        self._computing = 0
        self._model = None

    # -- identity ------------------------------------------------------------------------
    @property
    def label(self) -> str:
        return self.subject.spec

    @property
    def step(self) -> int | None:
        return self.subject.step

    @cached_property
    def identity(self) -> dict[str, Any]:
        return subject_identity(self.subject)

    @property
    def weights_sha256(self) -> str | None:
        return self.identity["weights_sha256"]

    @cached_property
    def tokenizer(self):
        return loading.load_tokenizer(self.subject)

    @property
    def architecture(self) -> str:
        """The Hugging Face model type (``gpt_neox``, ``gpt2``, ``llama``, …)."""
        return loading.architecture(self.subject)

    def at_step(self, step: int) -> "Study":
        """The same study on another checkpoint of the subject's family (same sequences, same cache)."""
        return Study(dataclasses.replace(self.subject, step=step), self.config, self.cache, self.device, self.progress)

    def step0(self) -> "Study | None":
        """The family's step-0 checkpoint (a null for the plateau), or None where there is none."""
        if self.step in (None, 0) or 0 not in family_steps(self.subject):
            return None
        return self.at_step(0)

    # -- inputs --------------------------------------------------------------------------
    @cached_property
    def frequencies(self) -> TokenFrequencies:
        """Unigram counts of the subject's training corpus: given, counted, the zoo's, or next to a local model.

        One count per unembedding row; a count file of tokenizer length is padded with zeros.
        """
        tokens, rows = loading.vocabulary_sizes(self.subject)
        if self.config.token_counts:
            return TokenFrequencies.from_npy(self.config.token_counts, rows, tokens)
        if self.config.frequency_corpus:
            return TokenFrequencies.from_texts(read_texts(self.config.frequency_corpus), self.tokenizer, rows)
        if self.subject.kind == "zoo":
            name = self.subject.family.split(":", 1)[1]
            return TokenFrequencies.from_npy(zoo.family_dir(name) / zoo.COUNTS, rows, tokens)
        local = loading.local_dir(self.subject)
        for candidate in ([local, local.parent] if local is not None else []):
            if (candidate / "token_counts.npy").is_file():
                return TokenFrequencies.from_npy(candidate / "token_counts.npy", rows, tokens)
        raise ValueError(
            f"no token frequencies for {self.subject.spec}: rare and common tokens are defined by the unigram "
            f"counts of the model's training corpus. Give --token-counts FILE.npy (one count per vocabulary id) "
            f"or --frequency-corpus PATH (text counted with the subject's tokenizer)"
            + ("" if local is None else f", or put token_counts.npy in {local}")
        )

    def _texts(self) -> list[str]:
        if self.config.eval_corpus:
            return read_texts(self.config.eval_corpus)
        return [d.text for d in corpus.split_documents(corpus.documents())[1]]

    @cached_property
    def eval_data(self) -> EvalData:
        """The evaluation sequences, grown to hold ``min_rare_positions``; built once per family."""
        n_ctx = loading.context_length(self.subject)
        if self.config.eval.seq_len > n_ctx:
            raise ValueError(
                f"evaluation sequences of {self.config.eval.seq_len} tokens exceed {self.subject.spec}'s context of "
                f"{n_ctx} tokens; use --eval-length {n_ctx} or less"
            )
        memo_key = (self.subject.family, self.config)
        if memo_key not in _EVAL_DATA:
            _EVAL_DATA[memo_key] = self._grown_eval_data()
        return _EVAL_DATA[memo_key]

    def _grown_eval_data(self) -> EvalData:
        """The asked number of sequences, doubled until they hold ``min_rare_positions`` rare-target positions,
        reach ``max_eval_sequences`` or the corpus has no room for more."""
        tok = self.tokenizer
        bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        eos = tok.eos_token_id if tok.eos_token_id is not None else bos
        special = sorted({i for i in (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) if i is not None})
        stream = evaldata.token_stream(self._texts(), tok, eos)
        spec = self.config.eval
        rare = self.frequencies.rare_mask(self.config.rare_definition)
        data = evaldata.build_eval_data(stream, spec, bos, special)
        while (int(data.positions(rare, self.config.conditioning).sum()) < self.config.min_rare_positions
               and spec.n_sequences < self.config.max_eval_sequences):
            spec = dataclasses.replace(spec, n_sequences=min(2 * spec.n_sequences, self.config.max_eval_sequences))
            try:
                data = evaldata.build_eval_data(stream, spec, bos, special)
            except ValueError:  # the corpus has no room for more sequences
                break
        return data

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

    @property
    def n_sequences(self) -> int:
        return int(self.eval_data.tokens.shape[0])

    def sample_sizes(self) -> dict[str, int]:
        """Sequences, valid/rare/common positions and selected positions, for records."""
        return {
            "sequences": self.n_sequences,
            "sequences_asked": int(self.config.eval.n_sequences),
            "sequence_length": int(self.eval_data.tokens.shape[1]),
            "valid_positions": int(self.eval_data.valid.sum()),
            "rare_positions": int(self.rare_positions.sum()),
            "common_positions": int(self.common_positions.sum()),
            "common_positions_per_repeat": int(self.selection.n_common(0)),
        }

    # -- cache plumbing ------------------------------------------------------------------
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

    def _measure(self, name: str, key: dict[str, Any],
                 compute: Callable[[], tuple[dict[str, np.ndarray], dict[str, Any]]]) -> dict[str, np.ndarray]:
        """The arrays of one measurement: from memory, else from the cache (computed once there)."""
        digest = key_digest(key)

        def announced():
            if self.progress is not None:
                self.progress(name, self.label)
            return compute()
        if digest not in self._arrays:
            self._computing += 1
            try:
                entry = self.cache.get_or_compute(name, key, announced)
            finally:
                self._computing -= 1
            self._arrays[digest], self._meta[digest] = entry.arrays, entry.meta
        if not self._computing:  # a measurement read to compute another is part of that one's key
            self.replay({name: digest})
        return self._arrays[digest]

    def replay(self, reads: dict[str, str]) -> None:
        """Count measurement name → digest reads as read now: in the claim's list and in every open
        ``tracking`` frame (a memoized result replays its reads, so provenance does not depend on claim order)."""
        for used in (self._used, *self._frames):
            for name, digest in reads.items():
                used[name if name not in used or used[name] == digest else f"{name}#{digest[:8]}"] = digest

    @contextmanager
    def tracking(self) -> Iterator[dict[str, str]]:
        """Collect the measurements read inside the block (a memoized result keeps them, see ``replay``)."""
        frame: dict[str, str] = {}
        self._frames.append(frame)
        try:
            yield frame
        finally:
            self._frames.pop()  # frames nest: the innermost is this one

    def begin_claim(self) -> None:
        """Forget which measurements were read (the runner calls this before each claim)."""
        self._used = {}

    def used_measurements(self) -> dict[str, str]:
        """Measurement name → cache digest of everything read since ``begin_claim``."""
        return dict(self._used)

    def load_model(self):
        """The subject as a TransformerLens model on this study's device and dtype: loaded on the first
        measurement that misses the cache and kept until ``release_model``."""
        if self._model is None:
            self._model = loading.load_model(self.subject, device=self.device, dtype=DTYPES[self.config.dtype])
        return self._model

    def release_model(self) -> None:
        """Drop the loaded model, if any (the runner calls this after each claim; cached arrays stay)."""
        self._model = None

    # -- measurements --------------------------------------------------------------------
    def activations(self) -> dict[str, np.ndarray]:
        """Final-MLP activations, final residuals and clean loss at the selected positions (cached)."""
        def compute():
            model = self.load_model()
            return record_activations(model, self.eval_data, self.selection), {"subject": self.subject.spec}
        return self._measure("activations", self._key("activations", 1), compute)

    def _influence(self, targets: str, ablation: str) -> dict[str, np.ndarray]:
        """Per-sequence influence ``mean``/``abs`` ``[n_sets, n_seq, d_mlp]`` and ``count`` ``[n_sets, n_seq]``."""
        sets = self._position_sets(targets)

        def compute():
            act, readout = self.activations(), self._readout()
            out: dict[str, list[np.ndarray]] = {"mean": [], "abs": [], "count": []}
            for g in sets:
                sub = self._subset(act, [g])
                delta, seq = torch.as_tensor(self._delta(sub, readout, ablation)), torch.as_tensor(sub["seq"])
                everywhere = torch.ones(seq.numel(), dtype=torch.bool)
                for absolute, key in ((False, "mean"), (True, "abs")):
                    m, c = influence.per_sequence_means(delta, seq, everywhere, absolute=absolute,
                                                        n_seq=self.n_sequences)
                    out[key].append(m.numpy())
                out["count"].append(c.numpy())
            return {k: np.stack(v) for k, v in out.items()}, {"ablation": ablation, "targets": targets}
        key = self._key("influence", 3, targets=targets, ablation=ablation, mode=self.config.influence_mode)
        return self._measure("influence", key, compute)

    def rare_influence(self, ablation: str = "mean") -> SequenceInfluence:
        """Per-sequence mean Δℓ at every rare-target position: means ``[n_seq, d_mlp]`` (nats), counts ``[n_seq]``."""
        arr = self._influence("rare", ablation)
        return SequenceInfluence(arr["mean"][0], arr["count"][0])

    def common_influence(self, ablation: str = "mean") -> list[SequenceInfluence]:
        """The same for each matched common-target subsample (``n_common_repeats`` of them)."""
        arr = self._influence("common", ablation)
        return [SequenceInfluence(m, c) for m, c in zip(arr["mean"], arr["count"])]

    def null_curves(self, targets: str, repeat: int, n: int, seed: int, *, permutation: str, kernel: str,
                    exact_checks: int, tolerance: float, ablation: str = "mean") -> NullCurves:
        """``n`` read→write-permuted null curves ``[n, d_mlp]`` (nats) on one target set (cached).

        ``targets``/``repeat``: rare (repeat 0) or common subsample ``repeat``. ``permutation``
        ``"direction"`` keeps each neuron's write norm, ``"row"`` moves whole rows
        (``harness.measure.influence.null_curves``). With ``kernel="approx"`` the first
        ``exact_checks`` curves are also computed exactly; the error is the root mean square over
        neurons of |approx − exact| (nats; the largest single difference is recorded beside it), and
        when it exceeds ``tolerance`` on any checked curve every curve is computed exactly.
        """
        group = self._position_sets(targets)[repeat]

        def compute():
            act = self._subset(self.activations(), [group])
            readout = self._readout()
            rng = np.random.default_rng(seed)
            perms = np.stack([rng.permutation(readout.d_mlp) for _ in range(n)])
            dev = self.device
            value = influence.ablation_values(ablation, torch.as_tensor(act["acts"], device=dev),
                                              mean_act=torch.as_tensor(act["mean_act"], device=dev))

            def run(mode: str, rows: np.ndarray) -> np.ndarray:
                return influence.null_curves(act["resid"], act["acts"], act["targets"], readout, value, rows,
                                             rescale=permutation == "direction", mode=mode, device=dev
                                             ).float().cpu().numpy()
            if kernel == "exact":
                return {"curves": run("exact", perms)}, {"kernel": "exact", "approx_error": None}
            curves = run("approx", perms)
            checked = perms[: min(exact_checks, n)]
            diff = run("exact", checked) - curves[: checked.shape[0]] if checked.size else np.zeros((0, 1))
            error = float(np.sqrt((diff**2).mean(axis=1)).max()) if checked.size else None
            worst = float(np.abs(diff).max()) if checked.size else None
            if error is not None and error > tolerance:
                return {"curves": run("exact", perms)}, {"kernel": "exact (approx error above tolerance)",
                                                         "approx_error": error, "approx_max_error": worst}
            return {"curves": curves}, {"kernel": "approx", "approx_error": error, "approx_max_error": worst}
        key = self._key("null_curves", 3, targets=targets, repeat=repeat, n=n, seed=seed, permutation=permutation,
                        kernel=kernel, exact_checks=exact_checks, tolerance=tolerance, ablation=ablation)
        arrays = self._measure("null_curves", key, compute)
        meta = self._meta[key_digest(key)]
        return NullCurves(arrays["curves"], permutation, meta["kernel"], meta["approx_error"])

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
        """The final MLP's write rows, final norm and unembedding, on this study's device."""
        if self._final_readout is None:
            model = self.load_model()
            self._final_readout = influence.final_readout(model).to(self.device, torch.float32)
            del model
        return self._final_readout

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

    def rare_activations(self) -> tuple[np.ndarray, np.ndarray]:
        """Final-MLP activations at rare-target positions ``[n_rare, d_mlp]`` and their sequence ids ``[n_rare]``."""
        act = self.activations()
        rare = act["group"] == 0
        return act["acts"][rare].astype(np.float64), act["seq"][rare]

    def planted_neurons(self) -> np.ndarray | None:
        """Final-MLP neuron ids planted as specialists (a positive control), or None: read from
        ``planted_neurons.json`` in the checkpoint's directory or its family's (the zoo's planted
        families ship one; any ``hf:`` directory may)."""
        directory = loading.local_dir(self.subject)
        for folder in (directory, directory.parent) if directory is not None else ():
            path = folder / zoo.PLANTED_IDS
            if path.is_file():
                return np.asarray(json.loads(path.read_text())["planted_neurons"], dtype=np.int64)
        return None

    def mlp_weights(self) -> MLPWeights:
        """The final MLP's read rows (``read``, or ``gate`` and ``up``) and write rows, each ``[d_mlp, d_model]``."""
        def compute():
            w = weights.final_mlp_weights(self.load_model())
            return {f"read_{k}": v for k, v in w.read.items()} | {"write": w.write}, {}
        arr = self._measure("final_mlp_weights", self._weights_key("final_mlp_weights", 2), compute)
        return MLPWeights(read={k[5:]: v for k, v in arr.items() if k.startswith("read_")}, write=arr["write"])

    def layer_alphas(self) -> dict[str, dict[str, float]]:
        """WeightWatcher's ESD α of each final-MLP matrix (``harness.measure.weights.layer_alphas``)."""
        def compute():
            alphas = weights.layer_alphas(self.mlp_weights())
            return {"alpha": np.array([a["alpha"] for a in alphas.values()])}, {"alphas": alphas}
        key = self._weights_key("layer_alphas", 1)
        self._measure("layer_alphas", key, compute)
        return self._meta[key_digest(key)]["alphas"]

    @cached_property
    def parallel_final_block(self) -> bool:
        """Whether the final block runs attention beside the MLP (GPT-NeoX ``use_parallel_residual``)."""
        return loading.parallel_attention(self.subject)

    @cached_property
    def n_layers(self) -> int:
        return loading.n_layers(self.subject)

    def routing_layers(self, count: int) -> list[int]:
        """The last ``count`` attention layers that feed the final MLP."""
        return heads.feeding_layers(self.n_layers, self.parallel_final_block, count)

    def head_ablation(self, specialists: np.ndarray, layers: list[int], ablation: str) -> dict[str, np.ndarray]:
        """Per-sequence losses and specialists' activation change with each head, and each whole layer,
        ablated (cached; ``harness.measure.heads``)."""
        def compute():
            arrays = heads.head_ablation(
                self.load_model(), torch.as_tensor(self.eval_data.tokens), torch.as_tensor(self.rare_positions),
                torch.as_tensor(self.common_positions), layers=layers, specialists=specialists, ablation=ablation,
            )
            return arrays, {"ablation": ablation}
        key = self._key("head_ablation", 2, layers=list(layers), ablation=ablation,
                        specialists=[int(i) for i in specialists])
        return self._measure("head_ablation", key, compute)
