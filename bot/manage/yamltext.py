"""Edits of the knowledge base's YAML as text, so that a shop keeping data/faq in git sees a clean diff.

The parser only says where things are (the line and column of each key, the extent of each value);
an edit then replaces, drops or adds whole lines, and every other byte of the file (comments, order,
indentation, aligned columns, quoting) stays as it was. A YAML library that dumps the whole document
again cannot promise that: re-emitting these files moves the follow-ups' nested lists and unfolds
shop.yml's aligned size chart. Whatever is written is loaded again and compared with what was meant
(bot.manage.entries), so a splice that went wrong is never kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.dialogue import knowledge
from bot.errors import InvalidInputError, KnowledgeBaseError

# libyaml's composer when PyYAML has it (several times faster); its columns count characters too.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_WIDE = 2**31 - 1  # no folding of long lines when a value is emitted
SHOP_KEY_SEP = "."


@dataclass(frozen=True)
class Item:
    """One entry's block in a FAQ file: its intent, and where each of its keys is (line, column)."""

    intent: str
    keys: Mapping[str, tuple[int, int]]
    styles: Mapping[str, str | None]  # a key's value style: "|" for a literal block, None for plain...


def _compose(text: str) -> Node | None:
    try:
        return yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise KnowledgeBaseError(f"not valid YAML: {exc}") from None


def items(text: str) -> list[Item]:
    """The entries of a FAQ file, in file order."""
    root = _compose(text)
    if root is None:
        return []
    if not isinstance(root, SequenceNode):
        raise KnowledgeBaseError("a FAQ file must be a list of entries")
    out = []
    for node in root.value:
        if not isinstance(node, MappingNode):
            continue
        pairs = [(k, v) for k, v in node.value if isinstance(k, ScalarNode)]
        keys = {k.value: (k.start_mark.line, k.start_mark.column) for k, _ in pairs}
        styles = {k.value: v.style if isinstance(v, ScalarNode) else type(v).__name__ for k, v in pairs}
        intent = next((str(v.value).strip() for k, v in pairs if k.value == "intent" and isinstance(v, ScalarNode)), "")
        out.append(Item(intent, keys, styles))
    return out


def examples_in(raw: Any) -> tuple[str, ...]:
    """The examples of an `examples` value, read as the loader reads them: one rule for both, since
    an example written here must read back as what was meant (hence the loader's private parser)."""
    return knowledge._parse_examples(raw, "")


def example_of(line: str) -> str | None:
    """The example a line of an `examples: |` block holds, if any."""
    found = examples_in(line)
    return found[0] if found else None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _span(lines: Sequence[str], line: int, col: int) -> tuple[int, int]:
    """The lines of the value under a key at (line, col): up to the next line indented no deeper
    than the key, without the blank lines at its end (they separate entries)."""
    end = line + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > col):
        end += 1
    while end > line + 1 and not lines[end - 1].strip():
        end -= 1
    return line, end


def _home(text: str, intent: str) -> Item:
    for item in items(text):
        if item.intent == intent and "answer" in item.keys:
            return item
    raise KnowledgeBaseError(f"{intent} has no answer in this file")


def set_key(text: str, intent: str, key: str, block: list[str], after: str) -> str:
    """The home entry's `key` replaced by `block` (lines written at column 0, indented here to the
    entry's keys); a key the entry lacks is added after the key `after`."""
    lines = text.split("\n")
    item = _home(text, intent)
    line, col = item.keys.get(key, item.keys[after])
    start, end = _span(lines, line, col)
    lines[start if key in item.keys else end:end] = [" " * col + b if b else "" for b in block]
    return "\n".join(lines)


def _examples_block(item: Item, lines: list[str]) -> tuple[int, int, int]:
    """The content lines of an entry's `examples: |` block, and the indentation of its lines."""
    if item.styles["examples"] != "|":
        raise KnowledgeBaseError(f"the examples of {item.intent} are not an 'examples: |' block; edit the file by hand")
    line, col = item.keys["examples"]
    start, end = _span(lines, line, col)
    indent = next((_indent(ln) for ln in lines[start + 1:end] if ln.strip()), col + 2)
    return start + 1, end, indent


def drop_examples(text: str, intent: str, drop: set[str]) -> str:
    """Every line of the intent's example blocks in this file that holds one of `drop`, removed."""
    lines = text.split("\n")
    for item in reversed([i for i in items(text) if i.intent == intent and "examples" in i.keys]):
        start, end, _ = _examples_block(item, lines)
        lines[start:end] = [ln for ln in lines[start:end] if example_of(ln) not in drop]
    return "\n".join(lines)


def append_examples(text: str, intent: str, new: Sequence[str]) -> str:
    """`new` examples added at the end of the home entry's block (a block is made if it has none)."""
    item = _home(text, intent)
    if "examples" not in item.keys:
        return set_key(text, intent, "examples", ["examples: |", *(f"  - {e}" for e in new)], after="answer")
    lines = text.split("\n")
    _, end, indent = _examples_block(item, lines)
    lines[end:end] = [" " * indent + f"- {e}" for e in new]
    return "\n".join(lines)


def scalar_line(key: str, value: str) -> str:
    """`key: value` on one line, quoted when YAML would otherwise read the value as something else."""
    return yaml.safe_dump({key: value}, allow_unicode=True, width=_WIDE, sort_keys=False).rstrip("\n")


def literal_block(key: str, value: str) -> list[str]:
    """`key: |-` and the value's lines: the house format of answers, each line as the shop wrote it."""
    return [f"{key}: |-", *("  " + ln if ln else "" for ln in value.split("\n"))]


def entry_block(intent: str, title: str, answer: str, examples: Sequence[str]) -> list[str]:
    """A new entry as the FAQ files write one."""
    body = [scalar_line("title", title), *literal_block("answer", answer), "examples: |",
            *(f"  - {e}" for e in examples)]
    return [f"- intent: {intent}", *("  " + b if b else "" for b in body)]


def append_entry(text: str | None, block: list[str], header: str) -> str:
    """A FAQ file's text with `block` added at its end (a new file starts with `header`)."""
    if text is None:
        return header + "\n\n" + "\n".join(block) + "\n"
    return text + ("" if text.endswith("\n") or not text else "\n") + "\n" + "\n".join(block) + "\n"


def set_shop_value(text: str, key: str, value: Any) -> str:
    """shop.yml with the value at dotted `key` replaced in place (a scalar, or a flow list of
    scalars), the rest of its line (alignment, comment) kept."""
    node, in_flow = _shop_node(text, key)
    start, end = node.start_mark, node.end_mark
    if start.line != end.line:
        raise InvalidInputError(f"{key} spans several lines in shop.yml; edit it in the file")
    if isinstance(node, SequenceNode):
        new = "[" + ", ".join(_flow_scalar(v, None, True) for v in value) + "]"
    else:
        new = _flow_scalar(value, node.style, in_flow)
    lines = text.split("\n")
    row = lines[start.line]
    lines[start.line] = row[:start.column] + new + row[end.column:]
    return "\n".join(lines)


def _shop_node(text: str, key: str) -> tuple[ScalarNode | SequenceNode, bool]:
    node = _compose(text)
    in_flow = False
    for part in key.split(SHOP_KEY_SEP):
        if not isinstance(node, MappingNode):
            raise InvalidInputError(f"shop.yml has no setting {key}")
        node = next((v for k, v in node.value if isinstance(k, ScalarNode) and k.value == part), None)
        in_flow = in_flow or bool(getattr(node, "flow_style", False))
    if isinstance(node, SequenceNode) and all(isinstance(v, ScalarNode) for v in node.value):
        return node, True
    if not isinstance(node, ScalarNode):
        raise InvalidInputError(f"{key} is not a single value or a list of values in shop.yml")
    return node, in_flow


def _flow_scalar(value: Any, style: str | None, in_flow: bool) -> str:
    """A value as YAML writes it inline: plain when that reads back as the same string, else quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    plain = yaml.safe_dump(text, allow_unicode=True, width=_WIDE) in (f"{text}\n...\n", f"{text}\n")
    if style in ('"', "'") or not plain or (in_flow and any(ch in text for ch in ",[]{}")):
        return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar
    return text
