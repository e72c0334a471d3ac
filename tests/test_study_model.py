"""A study loads its model once while measurements miss the cache, and the runner releases it after each claim."""

from __future__ import annotations

import pytest

from harness import zoo
from harness.claims.registry import CLAIMS
from harness.claims.runner import Session, targets
from harness.claims.settings import load_settings
from harness.data.evaldata import EvalSpec
from harness.measure import study as study_module
from harness.measure.cache import MeasurementCache
from harness.measure.study import Study, StudyConfig
from harness.subjects import parse_subject

CONFIG = StudyConfig(eval=EvalSpec(n_sequences=24, seq_len=64), min_rare_positions=50)


@pytest.fixture
def tiny_zoo(tmp_path, monkeypatch):
    monkeypatch.setenv("RARE_ZOO_DIR", str(tmp_path / "zoo"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    zoo.ensure_built("neox-tiny", progress=False)


def test_one_model_per_study_until_released(tiny_zoo, tmp_path, monkeypatch):
    study = Study(parse_subject("zoo:neox-tiny@step32"), CONFIG, MeasurementCache(tmp_path / "cache"))
    loads, real = [], study_module.loading.load_model
    monkeypatch.setattr(study_module.loading, "load_model", lambda *a, **k: loads.append(1) or real(*a, **k))
    study.activations()
    study.mlp_weights()
    study.rare_influence()  # the readout: a third measurement that needs the model
    assert len(loads) == 1 and study.load_model() is study.load_model()
    study.release_model()
    study.load_model()
    assert len(loads) == 2


def test_the_runner_releases_the_models_after_a_claim(tiny_zoo, tmp_path):
    settings = load_settings(overrides={"min_rare_positions": 50})
    session = Session(settings, CONFIG, MeasurementCache(tmp_path / "cache"))
    target = targets([CLAIMS["C9"]], [parse_subject("zoo:neox-tiny@step16"), parse_subject("zoo:neox-tiny@step32")])[0]
    session.evaluate(target)
    assert session.studies and all(s._model is None for s in session.studies.values())
