"""The knowledge base: FAQ entries from data/faq/*.yml and the shop's facts from shop.yml.

Answers are templates filled from the shop config (`{shipping.cutoff_time}`), so a shop
edits values, not code. Errors name the file and the entry.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.dialogue import voice
from bot.errors import KnowledgeBaseError

SHOP_FILE = "shop.yml"
FAMILIES_HUMAN = "human"


@dataclass(frozen=True)
class FollowUp:
    """Short messages that mean an entry only after a question about one of `after` (那运费谁出 is
    returns.fee after a return question, shipping.fee after a shipping one): training's context data."""

    after: tuple[str, ...]
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Entry:
    """One catalogue entry: its id, answer template, training utterances and follow-ups."""

    intent: str
    answer: str
    examples: tuple[str, ...]
    title: str = ""
    follow_ups: tuple[FollowUp, ...] = ()

    @property
    def family(self) -> str:
        return self.intent.split(".", 1)[0]

    @property
    def is_human(self) -> bool:
        return self.family == FAMILIES_HUMAN


class _Namespace:
    """Dotted access into nested dicts for str.format (`{shipping.cutoff_time}`)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        try:
            value = self._data[name]
        except KeyError:
            raise AttributeError(name) from None
        return _Namespace(value) if isinstance(value, Mapping) else value

    def __format__(self, spec: str) -> str:
        raise KeyError("placeholder points at a section, not a value")


@dataclass(frozen=True)
class ShopConfig:
    """The shop's facts (shop.yml) plus derived texts used in answers."""

    data: Mapping[str, Any]
    computed: Mapping[str, str] = field(default_factory=dict)

    def get(self, path: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    def fields(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            k: (_Namespace(v) if isinstance(v, Mapping) else v) for k, v in self.data.items()
        }
        values.update(self.computed)
        return values


@dataclass(frozen=True)
class KnowledgeBase:
    """All entries by id, the shop config, and a hash of the data they came from."""

    entries: Mapping[str, Entry]
    shop: ShopConfig
    data_hash: str

    @property
    def intents(self) -> list[str]:
        return sorted(self.entries)

    def answer(self, intent: str, **extra: str) -> str:
        """The entry's answer filled from the shop config."""
        template = self.entries[intent].answer
        return render(template, self.shop, **extra)

    def training_pairs(self) -> tuple[list[str], list[str]]:
        texts, labels = [], []
        for intent in self.intents:
            for ex in self.entries[intent].examples:
                texts.append(ex)
                labels.append(intent)
        return texts, labels


def render(template: str, shop: ShopConfig, **extra: str) -> str:
    """Fill an answer template; unknown placeholders raise KnowledgeBaseError."""
    values = shop.fields()
    values.update(extra)
    try:
        return string.Formatter().vformat(template, (), values).strip()
    except (KeyError, AttributeError, IndexError, ValueError) as exc:
        raise KnowledgeBaseError(f"answer placeholder {exc} is not in shop.yml: {template[:40]}") from None


def _computed(data: Mapping[str, Any]) -> dict[str, str]:
    """Texts answers use that are built from lists in shop.yml, in the shop's voice (voice.formats)."""
    shop = ShopConfig(data)
    ship = data.get("shipping", {}) or {}
    pay = data.get("payment", {}) or {}
    sizes = data.get("sizes", {}) or {}
    couriers = ship.get("couriers", {}) or {}
    extra = [voice.fmt(shop, "courier_surcharge", courier=c, fee=fee) for c, fee in couriers.items() if fee]
    free = [c for c, fee in couriers.items() if not fee]
    chart_lines = [
        voice.fmt(shop, "size_chart_row", size=row["size"], height_min=row["height"][0], height_max=row["height"][1],
                  weight_min=row["weight"][0], weight_max=row["weight"][1], chest=row["chest"], length=row["length"])
        for row in sizes.get("chart", []) or []
    ]
    return {
        "couriers_text": voice.join(shop, extra) + (voice.fmt(shop, "couriers_free", couriers=voice.join(shop, free))
                                                    if free else ""),
        "remote_regions_text": voice.join(shop, ship.get("remote_regions", []) or []),
        "hmt_regions_text": voice.join(shop, ship.get("hmt_regions", []) or []),
        "local_regions_text": voice.join(shop, ship.get("local_regions", []) or []),
        "payment_methods_text": voice.join(shop, pay.get("methods", []) or []),
        "size_chart_text": "\n".join(chart_lines),
    }


# libyaml's loader when PyYAML was built with it: the same documents, several times faster at start-up.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        raise KnowledgeBaseError(f"{path}: not valid YAML: {exc}") from None


def _parse_examples(raw: Any, where: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        lines = [ln.strip() for ln in raw.splitlines()]
        items = [ln[1:].strip() for ln in lines if ln.startswith("-")]
    elif isinstance(raw, list):
        items = [str(x).strip() for x in raw]
    else:
        raise KnowledgeBaseError(f"{where}: 'examples' must be a block of '- ' lines")
    items = [i.strip("\"'") for i in items if i]
    return tuple(dict.fromkeys(items))  # drop duplicates, keep order


def load_shop(data_dir: Path) -> ShopConfig:
    path = data_dir / SHOP_FILE
    if not path.is_file():
        raise KnowledgeBaseError(f"{path}: shop config missing")
    data = _read_yaml(path) or {}
    if not isinstance(data, Mapping):
        raise KnowledgeBaseError(f"{path}: must be a mapping of settings")
    return ShopConfig(data=data, computed=_computed(data))


def load_entries(files: list[Path]) -> dict[str, Entry]:
    """Entries from every file; an intent may appear in several files (its examples merge),
    and needs an answer in exactly one of them."""
    answers: dict[str, tuple[str, str]] = {}
    examples: dict[str, tuple[str, ...]] = {}
    follow_ups: dict[str, tuple[FollowUp, ...]] = {}
    for path in files:
        items = _read_yaml(path) or []
        if not isinstance(items, list):
            raise KnowledgeBaseError(f"{path}: must be a list of entries")
        for i, item in enumerate(items):
            where = f"{path}: entry {i + 1} ({item.get('intent', '?') if isinstance(item, dict) else '?'})"
            if not isinstance(item, dict) or not item.get("intent"):
                raise KnowledgeBaseError(f"{where}: needs 'intent'")
            intent = str(item["intent"]).strip()
            if "." not in intent:
                raise KnowledgeBaseError(f"{where}: intent must be 'family.name'")
            if item.get("answer"):
                if intent in answers:
                    raise KnowledgeBaseError(f"{where}: {intent} already has an answer")
                answers[intent] = (str(item["answer"]), str(item.get("title", "")))
            found = _parse_examples(item.get("examples", []), where)
            examples[intent] = tuple(dict.fromkeys(examples.get(intent, ()) + found))
            follow_ups[intent] = follow_ups.get(intent, ()) + _parse_follow_ups(item.get("follow_ups"), where)
    missing = sorted(set(examples) - set(answers))
    if missing:
        raise KnowledgeBaseError(f"no answer for {', '.join(missing)}: give each intent an 'answer' in one file")
    for intent, items in follow_ups.items():
        unknown = sorted({a for f in items for a in f.after} - set(answers))
        if unknown:
            raise KnowledgeBaseError(f"follow-ups of {intent} come after unknown entries: {', '.join(unknown)}")
    return {intent: Entry(intent, answer, examples[intent], title, follow_ups.get(intent, ()))
            for intent, (answer, title) in answers.items()}


def _parse_follow_ups(raw: Any, where: str) -> tuple[FollowUp, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(f, dict) for f in raw):
        raise KnowledgeBaseError(f"{where}: 'follow_ups' must be a list of {{after: [ids], examples: ...}}")
    out = []
    for f in raw:
        after = f.get("after")
        if not isinstance(after, list) or not after or not all(isinstance(a, str) for a in after):
            raise KnowledgeBaseError(f"{where}: a follow-up needs 'after', a list of the entries it follows")
        out.append(FollowUp(tuple(after), _parse_examples(f.get("examples", []), where)))
    return tuple(out)


def load(data_dir: Path, extra_examples: list[tuple[str, str]] | None = None) -> KnowledgeBase:
    """Load every data/faq/*.yml entry and shop.yml; check that all answers render."""
    data_dir = Path(data_dir)
    files = sorted(p for p in data_dir.glob("*.yml") if p.name != SHOP_FILE)
    if not files:
        raise KnowledgeBaseError(f"{data_dir}: no FAQ files (*.yml) found")
    shop = load_shop(data_dir)
    entries = load_entries(files)
    for text, intent in extra_examples or []:
        if intent in entries:
            e = entries[intent]
            entries[intent] = Entry(e.intent, e.answer, tuple(dict.fromkeys(e.examples + (text,))), e.title)
    for e in entries.values():
        render(e.answer, shop)
    digest = hashlib.sha256()
    for p in files + [data_dir / SHOP_FILE]:
        digest.update(p.name.encode() + b"\0" + p.read_bytes())
    for text, intent in extra_examples or []:
        digest.update(f"{intent}\t{text}\n".encode())
    return KnowledgeBase(entries=entries, shop=shop, data_hash=digest.hexdigest()[:16])
