"""快捷短语: the shop's canned replies for agents, in a YAML file the shop edits (data/phrases.yml).

Each phrase has a title, optional keywords and a text filled from shop.yml like an answer
(`{name}`, `{returns.window_days}`), plus `{agent}`, the agent's name as shoppers see it. The
file is read again when it changes; an edit that breaks it keeps the phrases read last (and says
why in the log), so the agents' console never loses them mid-shift.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.dialogue.knowledge import ShopConfig, render
from bot.errors import ConflictError, InvalidInputError, KnowledgeBaseError
from bot.language.normalize import normalize
from bot.manage.files import atomic_write, edit_lock

log = logging.getLogger(__name__)
MAX_PHRASES = 500  # a console lists them all: a file beyond this is a mistake
# What the file says of itself when the manager's console writes it (its comments are not kept).
HEADER = ("# The agents' canned replies (the agent console's phrases), saved by the manager's console.\n"
          "# Each: a title, keywords it is found by, and a text filled from shop.yml ({name}, ...) and {agent}.\n")


@dataclass(frozen=True)
class Phrase:
    """One canned reply: what the agent sees in the list, what it is found by, what it says."""

    title: str
    text: str
    keywords: tuple[str, ...] = ()


def parse(path: Path) -> list[Phrase]:
    """The phrases of a file (none if there is no file); KnowledgeBaseError names the file and the phrase."""
    if not path.is_file():
        return []
    try:
        items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise KnowledgeBaseError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(items, list) or len(items) > MAX_PHRASES:
        raise KnowledgeBaseError(f"{path}: must be a list of at most {MAX_PHRASES} phrases (- title: ..., text: ...)")
    return [_phrase(item, f"{path}: phrase {n}") for n, item in enumerate(items, 1)]


def _phrase(item: Any, where: str) -> Phrase:
    if not isinstance(item, Mapping) or not str(item.get("title") or "").strip() \
            or not str(item.get("text") or "").strip():
        raise KnowledgeBaseError(f"{where}: needs a 'title' and a 'text'")
    keywords = item.get("keywords") or []
    if not isinstance(keywords, list):
        raise KnowledgeBaseError(f"{where} ({item['title']}): 'keywords' must be a list")
    return Phrase(str(item["title"]).strip(), str(item["text"]).strip(), tuple(str(k).strip() for k in keywords))


def fill(phrase: Phrase, shop: ShopConfig, agent: str = "") -> str:
    """The phrase's text with the shop's facts and the agent's name; KnowledgeBaseError names the phrase."""
    try:
        return render(phrase.text, shop, agent=agent)
    except KnowledgeBaseError as exc:
        raise KnowledgeBaseError(f"phrase '{phrase.title}': {exc}") from None


class PhraseBook:
    """The shop's phrases, read from `path` at start (a broken file stops start-up) and again when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._items = parse(self.path)

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def check(self, shop: ShopConfig) -> None:
        """Every phrase fills from this shop's facts (at start: a wrong placeholder is found before agents are)."""
        for p in self.items():
            fill(p, shop)

    def items(self) -> list[Phrase]:
        """The phrases as the file has them now (or as it had them last, when an edit broke it)."""
        stamp = self._stat()
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._items = parse(self.path)
                except KnowledgeBaseError as exc:
                    log.error("phrases not reloaded, keeping the %d read before: %s", len(self._items), exc)
                self._stamp = stamp
            return list(self._items)

    def search(self, shop: ShopConfig, query: str | None = None, agent: str = "") -> list[dict[str, Any]]:
        """`[{id, title, text, keywords}]`, filled, in the file's order; `query` keeps those whose title,
        keywords or text hold it (traditional or simplified, any case). A phrase that no longer fills
        (the shop's facts changed under it) is left out and logged."""
        wanted = normalize(query) if query else ""
        out = []
        for n, p in enumerate(self.items(), 1):
            try:
                text = fill(p, shop, agent)
            except KnowledgeBaseError as exc:
                log.error("%s", exc)
                continue
            if wanted and wanted not in normalize(" ".join((p.title, *p.keywords, text))):
                continue
            out.append({"id": n, "title": p.title, "text": text, "keywords": list(p.keywords)})
        return out


def version_of(path: Path) -> str:
    """A hash of the file as stored ("none" when there is none): what a save must have read."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else "none"


def save(path: Path, phrases: list[Phrase], version: str, shop: ShopConfig) -> str:
    """Write the phrases over the file read at `version` (ConflictError if it changed since); each must
    fill from the shop's facts (InvalidInputError names the one that does not). The new version."""
    for p in phrases:
        try:
            fill(p, shop)
        except KnowledgeBaseError as exc:
            raise InvalidInputError(str(exc)) from None
    items = [{"title": p.title, "keywords": list(p.keywords), "text": p.text} for p in phrases]
    text = HEADER + yaml.safe_dump(items, allow_unicode=True, sort_keys=False, width=1000)
    with edit_lock(path.parent):
        if version_of(path) != version:
            raise ConflictError("the phrases were saved by someone else meanwhile; read them again")
        atomic_write(path, text.encode())
        return version_of(path)
