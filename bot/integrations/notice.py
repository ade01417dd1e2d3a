"""What agents outside kefu's console read of a handoff: its reason, the shopper's words, the guesses.

The words come from notice.yml (a shop may reword them). The shopper's text leaves kefu with personal
data masked (bot/language/pii.mask), on one line, cut short, and with the characters that markdown
reads (links, emphasis, headings, HTML) replaced by their full-width forms: what a shopper typed
never becomes a link or a heading in the agents' group chat.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.dialogue.slots import read_body
from bot.language.pii import mask

NOTICE = Path(__file__).with_name("notice.yml")
MAX_TEXT = 300  # characters of the shopper's message in a notice
_MARKUP = str.maketrans({c: chr(ord(c) + 0xFEE0) for c in "[]()<>*_#`~|!"} | {"\r": " ", "\n": " ", "\t": " "})


@lru_cache
def words(path: Path = NOTICE) -> dict[str, Any]:
    """The notice's words, read once."""
    with open(path, encoding="utf-8") as f:
        data: dict[str, Any] = yaml.safe_load(f)
    return data


def shopper_text(text: str | None) -> str:
    """The shopper's words as they may leave the shop: masked, inert as markup, one line, short."""
    out = mask(str(text or "")).translate(_MARKUP).strip()
    return out if len(out) <= MAX_TEXT else out[: MAX_TEXT - 1] + "…"


def reason_name(reason: str | None) -> str:
    names: dict[str, str] = words()["reasons"]
    return names.get(str(reason), str(reason))


def handoff_lines(handoff: dict[str, Any]) -> tuple[str, list[str]]:
    """(title, lines) of a new handoff as the robots post it: its reason and the shopper's last message."""
    w = words()
    lines = [w["reason"].format(reason=reason_name(handoff.get("reason"))),
             w["last_message"].format(text=shopper_text(handoff.get("last_message")))]
    return w["title"].format(id=handoff["id"]), lines


def guesses_text(guesses: list[dict[str, Any]], titles: dict[str, str]) -> str:
    """`尺码表 0.41, 发货时间 0.22`: the bot's top guesses by the entries' titles."""
    return ", ".join(f"{titles.get(g['intent'], g['intent'])} {float(g['confidence']):.2f}" for g in guesses)


def slots_text(text: str) -> str:
    """What the shopper said that an answer could use (height, weight, usual sizes), or ''."""
    body, names = read_body(text), words()["slot_names"]
    found = {k: getattr(body, k) for k in ("height", "weight", "size", "shoe") if getattr(body, k) is not None}
    return ", ".join(f"{names[k]} {v:g}" if isinstance(v, float) else f"{names[k]} {v}" for k, v in found.items())


def packet(reason: str | None, text: str, guesses: list[dict[str, Any]], titles: dict[str, str]) -> str:
    """The handoff packet as a note for agents: reason, the bot's guesses, what the shopper said of use."""
    w = words()
    lines = [w["handed_off"], w["reason"].format(reason=reason_name(reason))]
    if guesses:
        lines.append(w["guesses"].format(guesses=guesses_text(guesses, titles)))
    slots = slots_text(text)
    if slots:
        lines.append(w["slots"].format(slots=slots))
    return "\n".join(lines)
