"""The knowledge base editor: list, search, read and change entries and the shop's facts.

The data folder stays the one source of truth: every read is of the files as they are now, and
every write goes to them (bot.manage.files: one editor at a time across processes, whole files,
the folder loaded again before the change is kept), in the format `kefu train` reads, touching only
the lines that change (bot.manage.yamltext), then its rows in the audit log. Answers and titles
are served as soon as the bot in service reloads the folder; new examples teach the model only
when it is trained again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.dialogue import knowledge
from bot.dialogue.knowledge import Entry, KnowledgeBase
from bot.errors import ConflictError, InvalidInputError, KnowledgeBaseError, NotFoundError
from bot.manage import audit, shopfacts, yamltext
from bot.manage.entries import (
    Edit,
    EntrySummary,
    EntryView,
    check_intent,
    clean_answer,
    clean_examples,
    clean_title,
    entry_view,
    faq_files,
    home_file,
    normalize_answer,
    snapshot,
    summaries,
    version_of,
)
from bot.manage.files import edit_lock, write_checked
from bot.manage.shopfacts import ShopView
from bot.service.store import Store

__all__ = ["Edit", "EntrySummary", "EntryView", "KnowledgeEditor", "ShopView", "version_of"]
NEW_ENTRIES_FILE = "shop_entries.yml"
NEW_ENTRIES_HEADER = ("# Entries the shop added with the knowledge base editor (the manager's console or\n"
                      "# POST /v1/admin/kb/entries). Same format as the other files; edit them here or there.")


@dataclass(frozen=True)
class _Draft:
    title: str
    answer: str
    examples: tuple[str, ...]


class KnowledgeEditor:
    """Reads and writes one data folder; `store` keeps the audit log. Cheap to make (it holds no
    state of the files): a server makes one per request."""

    def __init__(self, data_dir: Path, store: Store) -> None:
        self.data_dir = Path(data_dir)
        self.store = store

    # -- reading ---------------------------------------------------------------------------
    def entries(self, query: str = "") -> list[EntrySummary]:
        """Every entry by id, or those whose id, title, answer or an example contains `query`."""
        return summaries(self._load(), query)

    def entry(self, intent: str) -> EntryView:
        """One entry with its version, examples (and their files), follow-ups and filled answer."""
        return self._view(self._load(), intent)

    def shop(self) -> ShopView:
        """The shop's facts and their version."""
        return shopfacts.read(self.data_dir)

    def changes(self, limit: int = 50, before: int | None = None) -> list[audit.Change]:
        """The audit log, newest first."""
        return audit.recent(self.store, limit, before)

    # -- writing ---------------------------------------------------------------------------
    def update_entry(self, intent: str, *, title: str, answer: str, examples: Sequence[str], version: str,
                     who: str) -> Edit:
        """Replace an entry's title, answer and examples (the whole list: those left out are removed
        from whichever file holds them, new ones go to the entry's home file). ConflictError when
        the entry changed since `version` was read; nothing is written then."""
        with edit_lock(self.data_dir):
            kb = self._load()
            old = self._entry(kb, intent)
            if version != version_of(old):
                raise ConflictError(f"{intent} was changed by someone else since it was read (version {version}, "
                                    f"now {version_of(old)}); open it again and redo your change")
            new = _Draft(clean_title(title), clean_answer(answer, kb.shop), tuple(clean_examples(examples)))
            return self._change(kb, old, new, who)

    def create_entry(self, intent: str, title: str, answer: str, examples: Sequence[str], who: str) -> Edit:
        """A new entry `family.name` (a new family or an existing one), written to shop_entries.yml."""
        intent = check_intent(intent)
        with edit_lock(self.data_dir):
            kb = self._load()
            if intent in kb.entries:
                raise ConflictError(f"{intent} already exists; edit it instead")
            new = _Draft(clean_title(title), clean_answer(answer, kb.shop), tuple(clean_examples(examples)))
            moved = _taken(kb, intent, new.examples)
            texts = self._drop(_by_entry(moved))
            path = self.data_dir / NEW_ENTRIES_FILE
            text = texts[path] if path in texts else path.read_text(encoding="utf-8") if path.exists() else None
            block = yamltext.entry_block(intent, new.title, new.answer, new.examples)
            texts[path] = yamltext.append_entry(text, block, NEW_ENTRIES_HEADER)
            view = self._save(texts, kb, intent, None, new, who, moved)
            return Edit(view, retrain=True, added=new.examples, moved=moved)

    def add_examples(self, intent: str, texts: Iterable[str], who: str) -> Edit:
        """Add examples to an existing entry (those it already has are skipped), e.g. shopper messages
        from the review queue; audited as an update. No version: adding loses nobody's change."""
        with edit_lock(self.data_dir):
            kb = self._load()
            old = self._entry(kb, intent)
            added = [x for x in clean_examples(texts, at_least_one=False) if x not in old.examples]
            new = _Draft(old.title, normalize_answer(old.answer), old.examples + tuple(added))
            return self._change(kb, old, new, who)

    def update_shop(self, values: Mapping[str, Any], version: str, who: str) -> ShopView:
        """Set shop.yml's values at dotted keys (`{"shipping.cutoff_time": "17:00"}`); every answer must
        still fill. ConflictError when shop.yml changed since `version` was read."""
        with edit_lock(self.data_dir):
            view = shopfacts.read(self.data_dir)
            if version != view.version:
                raise ConflictError(f"shop.yml was changed by someone else since it was read (version {version}, "
                                    f"now {view.version}); open it again and redo your change")
            path = self.data_dir / knowledge.SHOP_FILE
            stored = path.read_text(encoding="utf-8")
            text, before, after = shopfacts.plan(stored, view, values)
            if text == stored:  # the values it has already: no write, no audit row
                return view

            def check() -> ShopView:
                self._load_checked()
                now = shopfacts.expect(self.data_dir, after)
                audit.record(self.store, who, [audit.Row("shop", "shop", before, after)])
                return now

            return write_checked({path: text}, check)

    # -- the parts -------------------------------------------------------------------------
    def _change(self, kb: KnowledgeBase, old: Entry, new: _Draft, who: str) -> Edit:
        added = tuple(x for x in new.examples if x not in old.examples)
        removed = tuple(x for x in old.examples if x not in new.examples)
        moved = _taken(kb, old.intent, added)
        texts = self._drop(_by_entry(moved) | ({old.intent: set(removed)} if removed else {}))
        self._edit_home(texts, old, new, added)
        if not texts:  # nothing differs from the files: no write, no audit row
            return Edit(self._view(kb, old.intent), retrain=False)
        view = self._save(texts, kb, old.intent, old, new, who, moved)
        return Edit(view, bool(added or removed), added, removed, moved)

    def _drop(self, drops: Mapping[str, set[str]]) -> dict[Path, str]:
        """The new text of each file that holds examples to drop (entry -> its examples to drop)."""
        texts: dict[Path, str] = {}
        for path in faq_files(self.data_dir) if drops else []:
            text = edited = path.read_text(encoding="utf-8")
            for intent, gone in drops.items():
                edited = yamltext.drop_examples(edited, intent, gone) if intent in edited else edited
            if edited != text:
                texts[path] = edited
        return texts

    def _edit_home(self, texts: dict[Path, str], old: Entry, new: _Draft, added: Sequence[str]) -> None:
        """Title, answer and new examples, in the file that holds the entry's answer."""
        home = home_file(self.data_dir, old.intent)
        before = home.read_text(encoding="utf-8")
        text = texts.get(home, before)
        if new.title != old.title:
            text = yamltext.set_key(text, old.intent, "title", [yamltext.scalar_line("title", new.title)], "intent")
        if new.answer != normalize_answer(old.answer):
            text = yamltext.set_key(text, old.intent, "answer", yamltext.literal_block("answer", new.answer), "intent")
        if added:
            text = yamltext.append_examples(text, old.intent, added)
        if text != before:
            texts[home] = text

    def _save(self, texts: Mapping[Path, str], kb: KnowledgeBase, intent: str, old: Entry | None, new: _Draft,
              who: str, moved: Mapping[str, str]) -> EntryView:
        """Write, read the folder back, check the entries are what was meant, then log them; any
        failure puts the old files back."""

        def check() -> EntryView:
            now = self._load_checked()
            e = now.entries.get(intent)
            if e is None or (e.title, normalize_answer(e.answer), set(e.examples)) != \
                    (new.title, new.answer, set(new.examples)) or \
                    any(x in now.entries[owner].examples for x, owner in moved.items()):
                raise KnowledgeBaseError(f"{intent} did not read back as it was written; nothing changed")
            rows = [audit.Row(intent, "update" if old else "create", snapshot(old), snapshot(e))]
            rows += [audit.Row(o, "update", snapshot(kb.entries[o]), snapshot(now.entries[o]))
                     for o in _by_entry(moved)]
            audit.record(self.store, who, rows)
            return self._view(now, intent)

        return write_checked(texts, check)

    def _view(self, kb: KnowledgeBase, intent: str) -> EntryView:
        self._entry(kb, intent)
        return entry_view(self.data_dir, kb, intent)

    def _entry(self, kb: KnowledgeBase, intent: str) -> Entry:
        if intent not in kb.entries:
            check_intent(intent)  # a malformed id is the caller's mistake (422), a well-formed one unknown (404)
            raise NotFoundError(f"no entry {intent} in the knowledge base")
        return kb.entries[intent]

    def _load(self) -> KnowledgeBase:
        return knowledge.load(self.data_dir)

    def _load_checked(self) -> KnowledgeBase:
        """The folder as written, or InvalidInputError: a change that leaves it unreadable is refused."""
        try:
            return knowledge.load(self.data_dir)
        except KnowledgeBaseError as exc:
            raise InvalidInputError(f"the change would break the knowledge base: {exc}") from None



def _taken(kb: KnowledgeBase, intent: str, texts: Iterable[str]) -> dict[str, str]:
    """The examples (of `texts`) that another entry has now, with that entry. An example teaches the
    model one entry, so giving it to `intent` takes it from the other: a manager who files 是正品吗
    under product.authentic means that question is no longer human.other's."""
    owner_of = {x: other for other, e in kb.entries.items() if other != intent for x in e.examples}
    moved = {x: owner_of[x] for x in texts if x in owner_of}
    for owner, gone in _by_entry(moved).items():
        if set(kb.entries[owner].examples) <= gone:
            raise InvalidInputError(f"{owner} would be left without examples; keep at least one there")
    return moved


def _by_entry(moved: Mapping[str, str]) -> dict[str, set[str]]:
    """example -> entry, turned into entry -> its examples (in a stable order of entries)."""
    out: dict[str, set[str]] = {}
    for text, owner in sorted(moved.items(), key=lambda m: m[1]):
        out.setdefault(owner, set()).add(text)
    return out
