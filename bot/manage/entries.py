"""Entries as the editor shows them and as it takes them.

Shown: the list, one entry with the files of its examples, its version, read from the data folder
as it is now (the files are the one source of truth, and a version must be of what is stored, not
of what a server loaded earlier). Taken: ids, titles, answers and examples, checked before anything
touches the data folder (InvalidInputError, 422 in the API, says what is wrong).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.dialogue import knowledge
from bot.dialogue.knowledge import Entry, FollowUp, KnowledgeBase
from bot.errors import InvalidInputError, KnowledgeBaseError
from bot.language.normalize import check_text
from bot.manage import yamltext

# `family.name`: lower-case ASCII, as the catalogue's ids (size.chart, product.authentic).
INTENT_ID = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"
_INTENT_ID = re.compile(INTENT_ID)
MAX_ID_CHARS = 64  # the audit log's column for the entry
MAX_TITLE_CHARS = 50  # a label in the agents' select and the console's list
MAX_ANSWER_CHARS = 2000
MAX_EXAMPLE_CHARS = 200  # a shopper's question, not a paragraph; longer ones teach the model little
MAX_EXAMPLES = 5000
# Characters YAML reads as the end of a line: a title or an example is one line of its file.
_LINE_BREAKS = re.compile(r"[\n\r\u2028\u2029]")

SUMMARY_CHARS = 80
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class EntrySummary:
    """An entry in the list: enough to find it (`match`: the example a search found it by, if any)."""

    intent: str
    title: str
    family: str
    examples: int
    answer: str  # the template's first lines
    match: str | None = None


@dataclass(frozen=True)
class Example:
    """One training utterance and the file that holds it."""

    text: str
    file: str


@dataclass(frozen=True)
class EntryView:
    """An entry as the editor shows it: `version` to send back with a change, `preview` the answer
    filled with the shop's facts, `home` the file that holds its answer."""

    intent: str
    title: str
    family: str
    answer: str
    preview: str
    version: str
    home: str
    examples: tuple[Example, ...]
    follow_ups: tuple[FollowUp, ...]  # read-only here: they live in follow_ups.yml and its like


@dataclass(frozen=True)
class Edit:
    """A saved change: the entry now, and whether the model must be trained again to learn it.
    `moved`: examples that were another entry's, with that entry (they left it)."""

    entry: EntryView
    retrain: bool
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    moved: Mapping[str, str] = field(default_factory=dict)


def version_of(entry: Entry) -> str:
    """A short hash of what a manager edits (title, answer, examples) and of the follow-ups, as
    stored: a change saved with an older version would overwrite someone else's."""
    follow_ups = [[list(f.after), list(f.examples)] for f in entry.follow_ups]
    data = [entry.title, entry.answer, list(entry.examples), follow_ups]
    return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()[:12]


def summaries(kb: KnowledgeBase, query: str = "") -> list[EntrySummary]:
    """Every entry by id, or those whose id, title, answer (template or filled) or an example
    contains `query`: a plain substring, Latin letters in any case."""
    q = query.strip().casefold()
    out = []
    for intent in kb.intents:
        e = kb.entries[intent]
        texts = (e.intent, e.title, e.answer, knowledge.render(e.answer, kb.shop))
        hit = None if not q or any(q in t.casefold() for t in texts) else \
            next((x for x in e.examples if q in x.casefold()), "")
        if hit != "":
            out.append(EntrySummary(e.intent, e.title, e.family, len(e.examples), _head(e.answer), hit))
    return out


def entry_view(data_dir: Path, kb: KnowledgeBase, intent: str) -> EntryView:
    """One entry with its version, its examples and their files, follow-ups and filled answer."""
    e = kb.entries[intent]
    blocks = sources(data_dir, intent)
    where: dict[str, str] = {}
    for path, item in blocks:
        for text in yamltext.examples_in(item.get("examples", [])):
            where.setdefault(text, path.name)
    home = next(p.name for p, item in blocks if item.get("answer"))
    return EntryView(e.intent, e.title, e.family, e.answer, knowledge.render(e.answer, kb.shop), version_of(e),
                     home, tuple(Example(x, where.get(x, home)) for x in e.examples), e.follow_ups)


def sources(data_dir: Path, intent: str) -> list[tuple[Path, dict[str, Any]]]:
    """Every block of the entry, with its file, in the order the loader reads them."""
    out = []
    for path in faq_files(data_dir):
        text = path.read_text(encoding="utf-8")
        if intent in text:
            items = yaml.load(text, Loader=_LOADER) or []  # a safe loader (C or Python)
            out += [(path, i) for i in items if isinstance(i, dict) and str(i.get("intent", "")).strip() == intent]
    return out


def home_file(data_dir: Path, intent: str) -> Path:
    """The file that holds the entry's answer (and title); new examples go there."""
    return next(p for p, item in sources(data_dir, intent) if item.get("answer"))


def faq_files(data_dir: Path) -> list[Path]:
    """The files the loader reads entries from."""
    return sorted(p for p in data_dir.glob("*.yml") if p.name != knowledge.SHOP_FILE)


def snapshot(e: Entry | None) -> dict[str, Any] | None:
    """What the audit log keeps of an entry."""
    if e is None:
        return None
    return {"title": e.title, "answer": e.answer, "examples": list(e.examples), "version": version_of(e)}


def _head(answer: str) -> str:
    text = " ".join(ln.strip() for ln in answer.splitlines()[:2] if ln.strip())
    return text if len(text) <= SUMMARY_CHARS else text[:SUMMARY_CHARS - 1] + "…"


# -- what the editor takes ------------------------------------------------------------------

def check_intent(intent: object) -> str:
    """A new entry's id: `family.name` in lower-case ASCII letters, digits and underscores."""
    if not isinstance(intent, str) or len(intent) > MAX_ID_CHARS or not _INTENT_ID.match(intent):
        raise InvalidInputError(f"entry id {intent!r} must look like family.name (lower-case letters, digits, "
                                f"underscores; at most {MAX_ID_CHARS} characters), e.g. product.authentic")
    return intent


def clean_title(title: object) -> str:
    """A title on one line, trimmed."""
    text = check_text(title, what="title", max_chars=MAX_TITLE_CHARS).strip()
    if _LINE_BREAKS.search(text):
        raise InvalidInputError("title must be one line")
    return text


def clean_answer(answer: object, shop: knowledge.ShopConfig) -> str:
    """An answer template with its lines as written (line ends unified, trailing spaces dropped),
    whose placeholders are all facts of shop.yml."""
    raw = check_text(answer, what="answer", max_chars=MAX_ANSWER_CHARS)
    text = normalize_answer(raw)
    try:
        knowledge.render(text, shop)
    except KnowledgeBaseError as exc:
        raise InvalidInputError(f"{exc}; use a fact of shop.yml, e.g. {{shipping.cutoff_time}}") from None
    return text


def normalize_answer(text: str) -> str:
    """The form answers are stored in, so that an unchanged answer compares equal to its file's."""
    lines = _LINE_BREAKS.sub("\n", text.replace("\r\n", "\n")).split("\n")
    return "\n".join(ln.rstrip() for ln in lines).strip()


def clean_examples(texts: Iterable[object], *, at_least_one: bool = True) -> list[str]:
    """Examples as the loader will read them back (trimmed, outer quotes dropped), duplicates
    collapsed, order kept; each one line of at most MAX_EXAMPLE_CHARS characters."""
    out: dict[str, None] = {}
    for n, raw in enumerate(texts, 1):
        what = f"example {n}"
        text = check_text(raw, what=what, max_chars=MAX_EXAMPLE_CHARS)
        if _LINE_BREAKS.search(text):
            raise InvalidInputError(f"{what} must be one line; give each example its own item")
        out[_as_read(text, what)] = None
    if len(out) > MAX_EXAMPLES:
        raise InvalidInputError(f"at most {MAX_EXAMPLES} examples per entry")
    if at_least_one and not out:
        raise InvalidInputError("an entry needs at least one example (a question a shopper would ask)")
    return list(out)


def _as_read(text: str, what: str) -> str:
    """The example as the loader reads the line `- <text>` back; refused when that would differ."""
    found = yamltext.example_of(f"- {text.strip()}")
    if not found:
        raise InvalidInputError(f"{what} is empty")
    if yamltext.example_of(f"- {found}") != found:  # e.g. quotes around spaces: ' 在吗'
        raise InvalidInputError(f"{what} cannot be stored as written: {text!r}")
    return found
