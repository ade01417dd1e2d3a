"""Text normalisation: the one canonical form every later step sees.

Traditional -> simplified (OpenCC, Taiwan phrases included), full-width -> half-width
(NFKC), lower case, repeated punctuation folded, emoji mapped to a word when they carry
meaning (anger, thanks) and dropped otherwise, control characters and lone surrogates removed.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import opencc

# Emoji that carry meaning for routing become words; other symbols are dropped.
_EMOJI_WORDS = {
    "😡": " 生气 ", "🤬": " 生气 ", "😠": " 生气 ", "💢": " 生气 ", "👿": " 生气 ",
    "😤": " 生气 ", "🙏": " 谢谢 ", "👍": " 好的 ", "👌": " 好的 ", "😭": " 难过 ",
    "💔": " 难过 ", "👋": " 你好 ",
}
# Fixes OpenCC leaves: Taiwan/HK usage and common variant forms.
_PHRASE_FIXES = {"甚么": "什么", "甚麽": "什么", "什麽": "什么", "麽": "么", "著": "着", "裡": "里",
                 # 帐 for 账 (money), common in shoppers' writing and what OpenCC makes of 帳; 帐篷 stays
                 "到帐": "到账", "转帐": "转账", "入帐": "入账", "结帐": "结账", "对帐": "对账",
                 "帐户": "账户", "帐号": "账号", "帐单": "账单"}
_REPEATED_PUNCT = re.compile(r"([!?.,~…。，！？、~\-_=*#])\1+")
_SPACES = re.compile(r"\s+")
_PHRASE_RE = re.compile("|".join(map(re.escape, _PHRASE_FIXES)))


@lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    return opencc.OpenCC("tw2sp")


def _drop_char(ch: str) -> str:
    """Map one character: keep letters, digits, CJK and punctuation; drop the rest."""
    if ch in _EMOJI_WORDS:
        return _EMOJI_WORDS[ch]
    cat = unicodedata.category(ch)
    if cat in ("Cc", "Cf", "Cs", "Co", "Cn"):
        return " " if ch in "\t\n\r" else ""
    if cat in ("So", "Sk", "Mn", "Me"):  # emoji, modifiers, variation selectors
        return ""
    return ch


def normalize(text: str) -> str:
    """Return the canonical form of a shopper message (may be empty)."""
    text = text.encode("utf-8", "replace").decode("utf-8") if _has_surrogate(text) else text
    text = "".join(_drop_char(ch) for ch in text)
    # NFKC and lower case can bring out a mark to drop (Thai ำ is ํ + า, İ is i + ̇): dropped too, so
    # that the form is a fixed point.
    text = "".join(_drop_char(ch) for ch in unicodedata.normalize("NFKC", text).lower())
    text = _converter().convert(text)
    text = _PHRASE_RE.sub(lambda m: _PHRASE_FIXES[m.group(0)], text)
    text = text.replace("。", "。").replace("...", "…")
    text = _REPEATED_PUNCT.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip()


def normalize_batch(texts: list[str]) -> list[str]:
    """Normalise many texts (a picklable pipeline step)."""
    return [normalize(t) for t in texts]


# Characters no shopper types and no database should store: C0 controls but tab and line breaks,
# DEL, C1 controls, lone surrogates (PostgreSQL refuses NUL outright, and a surrogate cannot be
# encoded as UTF-8).
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


# Letters and symbols that draw nothing: the Hangul fillers, the blank Braille pattern, the Mongolian
# vowel separator.
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")


def has_visible(text: str) -> bool:
    """Whether the text shows anything: not only spaces, line breaks, invisible format characters
    (zero-width spaces and joiners, byte-order marks, bidi marks), combining marks and variation
    selectors with nothing to combine with, or blank fillers."""
    return any(unicodedata.category(ch)[0] not in "ZCM" and ch not in _BLANK for ch in text)


def check_text(value: object, *, what: str = "message", max_chars: int = 1000, blank_ok: bool = False) -> str:
    """The one validation of text that people send (a shopper's message, an agent's reply, a note):
    a string, within the limit, without control characters, and (unless `blank_ok`) showing something.
    InvalidInputError says what is wrong."""
    from bot.errors import InvalidInputError

    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string")
    if len(value) > max_chars:
        raise InvalidInputError(f"{what} is longer than {max_chars} characters")
    if _FORBIDDEN.search(value):
        raise InvalidInputError(f"{what} contains control characters")
    if not blank_ok and not has_visible(value):
        raise InvalidInputError(f"{what} is empty")
    return value


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)
