"""Subject strings: round trips, checkpoint expansion, and errors that list what is valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformer_lens.tools.model_registry.checkpoints import PYTHIA_CHECKPOINTS

from harness.subjects import Subject, SubjectError, describe, expand_subjects, family_steps, parse_subject
from harness.subjects.grammar import GPT2_FAMILIES, PYTHIA_FAMILIES, PYTHIA_STEPS
from harness.zoo import ZOO

HF_STEPS = (0, 2, 10, 512)


def _model_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({}))
    return path


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A directory of step<N>/ checkpoints, a plain model directory, and an empty one."""
    root = tmp_path_factory.mktemp("hf")
    for step in HF_STEPS:
        _model_dir(root / "ckpts" / f"step{step}")
    (root / "ckpts" / "step99").mkdir()  # no config.json: not a checkpoint
    (root / "ckpts" / "notes").mkdir()
    (root / "empty").mkdir()
    return {"ckpts": root / "ckpts", "plain": _model_dir(root / "plain"), "empty": root / "empty"}


def subjects(hf_dirs: dict[str, Path]) -> st.SearchStrategy[Subject]:
    pythia = st.builds(lambda f, s: Subject("hub", f, s), st.sampled_from(PYTHIA_FAMILIES), st.sampled_from(PYTHIA_STEPS))
    gpt2 = st.builds(lambda f: Subject("hub", f, None), st.sampled_from(GPT2_FAMILIES))
    zoo = st.sampled_from(sorted(ZOO)).flatmap(
        lambda n: st.builds(lambda s: Subject("zoo", f"zoo:{n}", s), st.sampled_from(ZOO[n].steps))
    )
    hf = st.one_of(
        st.builds(lambda s: Subject("hf", f"hf:{hf_dirs['ckpts']}", s), st.sampled_from(HF_STEPS)),
        st.just(Subject("hf", f"hf:{hf_dirs['plain']}", None)),
    )
    return st.one_of(pythia, gpt2, zoo, hf)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_spec_round_trips(hf_dirs: dict[str, Path], data: st.DataObject) -> None:
    subject = data.draw(subjects(hf_dirs))
    assert parse_subject(subject.spec) == subject
    assert expand_subjects(subject.spec) == [subject]
    assert subject.revision == (None if subject.step is None else f"step{subject.step}")
    assert subject.test_id.endswith("" if subject.step is None else f"@step{subject.step}")


def test_pythia_checkpoints_follow_the_published_rule() -> None:
    rule = {0} | {2**k for k in range(10)} | set(range(1000, 143001, 1000))
    assert family_steps("pythia-70m") == sorted(rule) == PYTHIA_CHECKPOINTS
    expanded = expand_subjects("pythia-70m-deduped@*")
    assert len(expanded) == len(rule)
    assert [s.step for s in expanded] == sorted(rule)


def test_bare_names_mean_the_final_checkpoint(hf_dirs: dict[str, Path]) -> None:
    final = max(PYTHIA_STEPS)
    assert parse_subject("pythia-410m") == Subject("hub", "pythia-410m", final)
    assert parse_subject("pythia-410m").spec == f"pythia-410m@step{final}"
    assert parse_subject("gpt2-xl") == Subject("hub", "gpt2-xl", None)
    assert parse_subject("zoo:neox-4l").step == max(ZOO["neox-4l"].steps)
    assert parse_subject(f"hf:{hf_dirs['ckpts']}").step == max(HF_STEPS)
    assert parse_subject(f"hf:{hf_dirs['plain']}").step is None


def test_readable_ids_and_hub_names(hf_dirs: dict[str, Path]) -> None:
    assert parse_subject("pythia-70m").test_id == "pythia-70m@step143000"
    final = max(ZOO["neox-4l"].steps)
    assert parse_subject(f"zoo:neox-4l@step{final}").test_id == f"zoo:neox-4l@step{final}"
    assert parse_subject(f"hf:{hf_dirs['ckpts']}@step2").test_id == "hf:ckpts@step2"
    assert parse_subject("pythia-1.4b-deduped@step8").hub_name == "EleutherAI/pythia-1.4b-deduped"
    assert parse_subject("gpt2-medium").hub_name == "openai-community/gpt2-medium"
    assert parse_subject("zoo:gpt2-4l@step0").hub_name is None


def test_zoo_star_is_every_default_family_at_every_checkpoint() -> None:
    expanded = expand_subjects("zoo:*")
    expected = [(f"zoo:{n}", s) for n, spec in ZOO.items() if spec.default for s in spec.steps]
    assert [(s.family, s.step) for s in expanded] == expected
    assert all(s.kind == "zoo" for s in expanded)


def test_local_directory_checkpoints_expand_in_step_order(hf_dirs: dict[str, Path]) -> None:
    expanded = expand_subjects(f"hf:{hf_dirs['ckpts']}@*")
    assert [s.step for s in expanded] == sorted(HF_STEPS)
    assert all(s.has_checkpoints for s in expanded)
    assert not parse_subject(f"hf:{hf_dirs['plain']}").has_checkpoints


def test_relative_local_paths_become_absolute(hf_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(hf_dirs["ckpts"].parent)
    assert parse_subject("hf:ckpts@step10") == Subject("hf", f"hf:{hf_dirs['ckpts']}", 10)


def test_comma_lists_keep_order_and_drop_duplicates() -> None:
    specs = [s.spec for s in expand_subjects(" gpt2-xl, pythia-70m@step4,gpt2-xl ,pythia-70m@step4")]
    assert specs == ["gpt2-xl", "pythia-70m@step4"]


def test_family_steps_of_families_without_checkpoints(hf_dirs: dict[str, Path]) -> None:
    assert family_steps("gpt2") == []
    assert family_steps(parse_subject(f"hf:{hf_dirs['plain']}")) == []
    assert family_steps(Subject("zoo", "zoo:neox-tiny", 0)) == list(ZOO["neox-tiny"].steps)


@pytest.mark.parametrize(
    ("text", "must_name"),
    [
        ("pythia-71m", ["pythia-70m", "pythia-12b-deduped", "gpt2-xl", "zoo:"]),
        ("Pythia-70M", ["pythia-70m"]),
        ("pythia-70m@step3", ["step2", "step4", "powers of two"]),
        ("pythia-70m@step700", ["step512", "step1000"]),
        ("pythia-70m@step150000", ["step143000"]),
        ("gpt2@step1", ["no checkpoints"]),
        ("gpt2-large@*", ["no checkpoints"]),
        ("zoo:nope@step1", sorted(ZOO)),
        ("zoo:neox-4l@step3", ["step2", "step4"]),  # every zoo schedule starts 0, 1, 2, 4
        ("pythia-70m@3", ["@step<N>", "hf:<directory>", "zoo:<name>"]),
        ("pythia-70m@latest", ["@step<N>"]),
        ("pythia 70m", ["@step<N>"]),
        ("", ["@step<N>"]),
        (" , ", ["@step<N>"]),
        ("hf:", ["directory"]),
        ("hf:/no/such/dir/anywhere", ["no such directory"]),
    ],
)
def test_bad_subjects_name_the_valid_choices(text: str, must_name: list[str]) -> None:
    with pytest.raises(SubjectError) as err:
        expand_subjects(text)
    assert all(word in str(err.value) for word in must_name), str(err.value)


def test_bad_local_directories_list_what_exists(hf_dirs: dict[str, Path]) -> None:
    with pytest.raises(SubjectError, match="nearest: step2, step10") as err:
        parse_subject(f"hf:{hf_dirs['ckpts']}@step3")
    assert all(f"step{s}" in str(err.value) for s in HF_STEPS)
    with pytest.raises(SubjectError, match="neither config.json nor step"):
        parse_subject(f"hf:{hf_dirs['empty']}")
    with pytest.raises(SubjectError, match="no checkpoints"):
        expand_subjects(f"hf:{hf_dirs['plain']}@*")


def test_parse_refuses_patterns_and_invalid_construction() -> None:
    with pytest.raises(SubjectError, match="expand_subjects"):
        parse_subject("pythia-70m@*")
    with pytest.raises(SubjectError, match="expand_subjects"):
        parse_subject("zoo:*")
    with pytest.raises(SubjectError, match="'hub', 'hf', 'zoo'"):
        Subject("local", "pythia-70m", 0)  # type: ignore[arg-type]
    with pytest.raises(SubjectError, match="has checkpoints"):
        Subject("hub", "pythia-70m", None)
    with pytest.raises(SubjectError, match="absolute path"):
        Subject("hf", "hf:relative/dir", None)
    with pytest.raises(SubjectError, match="not of kind"):
        Subject("zoo", "pythia-70m", 0)
    assert issubclass(SubjectError, ValueError)


def test_describe_lists_families_and_expands_patterns() -> None:
    listing = describe()
    assert all(f in listing for f in PYTHIA_FAMILIES + GPT2_FAMILIES)
    assert all(f"zoo:{n}" in listing for n in ZOO)
    assert describe("gpt2,pythia-70m@step1").splitlines() == ["gpt2", "pythia-70m@step1"]
