"""Property tests of the text pipeline: any Unicode string is handled, never a crash."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.dialogue.engine import check_message
from bot.errors import InvalidInputError
from bot.language.normalize import normalize
from bot.language.pii import mask
from bot.language.segment import cut

ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=300)
EMOJI = st.text(alphabet=st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF), min_size=1, max_size=50)
PUNCT = st.text(alphabet=st.sampled_from(list("!?。，、…~—！？,.;；:：“”\"'()（）【】[]")), min_size=1, max_size=80)
MIXED = st.text(alphabet=st.sampled_from(list("发货退款尺码運費嗎abcXYZ１２３ｓｆ😡 \t\n\x00\x07\u200b\ud800")),
                max_size=200)


@settings(max_examples=300, deadline=None)
@given(st.one_of(ANY_TEXT, EMOJI, PUNCT, MIXED))
@example("ำ")  # NFKC brings out a combining mark (found by this test, 2026-11-27)
@example("İ 退货")  # so does lower case
def test_normalize_and_cut_accept_any_string(text: str) -> None:
    norm = normalize(text)
    assert isinstance(norm, str)
    assert normalize(norm) == norm  # idempotent: the canonical form is a fixed point
    assert not any("\ud800" <= ch <= "\udfff" for ch in norm)
    assert all(isinstance(w, str) and w.strip() for w in cut(norm))
    assert isinstance(mask(text), str)


def test_hundred_thousand_characters() -> None:
    text = "请问什么时候发货😀" * 12_000
    assert len(normalize(text)) > 90_000
    with pytest.raises(InvalidInputError):
        check_message(text)


BLANK = "\u115f\u1160\u3164\uffa0\u2800\u180e"  # letters and symbols that draw nothing


def acceptable(text: str) -> bool:
    try:
        check_message(text)
        return True
    except InvalidInputError:
        return False


@settings(max_examples=300, deadline=None)
@given(st.one_of(ANY_TEXT, MIXED))
def test_a_message_is_refused_exactly_when_it_has_control_characters_or_shows_nothing(text: str) -> None:
    controls = any(ord(ch) < 32 and ch not in "\t\n\r" or 0x7F <= ord(ch) <= 0x9F or 0xD800 <= ord(ch) <= 0xDFFF
                   for ch in text)
    visible = any(not ch.isspace() and unicodedata.category(ch)[0] not in "ZCM" and ch not in BLANK for ch in text)
    assert acceptable(text) == (not controls and visible and len(text) <= 1000)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(ANY_TEXT, EMOJI, PUNCT, MIXED).filter(acceptable))
def test_bot_answers_any_acceptable_message(bot, text: str) -> None:  # type: ignore[no-untyped-def]
    out = bot.reply(text)
    assert out.route in ("faq", "human") and out.reply
    assert out.action in ("answer", "suggest", "clarify", "handoff")
