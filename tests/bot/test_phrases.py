"""快捷短语 (bot/assist/phrases.py): read from the shop's file, filled from shop.yml, found by keyword."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.assist.phrases import PhraseBook, parse
from bot.dialogue.knowledge import load_shop
from bot.errors import KnowledgeBaseError
from tests.conftest import DATA, ROOT


def test_the_shipped_phrases_fill_from_the_shipped_shop() -> None:
    # Given the repository's phrases and shop.yml, every phrase fills, the agent's name in it.
    book, shop = PhraseBook(ROOT / "data" / "phrases.yml"), load_shop(DATA)
    book.check(shop)
    found = book.search(shop, agent="小美")
    assert len(found) >= 5 and found[0]["text"].startswith("亲，您好～欢迎光临小鲸鱼服饰旗舰店，我是客服小美")
    assert all("{" not in p["text"] for p in found)


# fmt: off
BROKEN = [
    ("- title: 欢迎\n", "phrase 1: needs a 'title' and a 'text'"),
    ("- text: 亲\n", "phrase 1: needs a 'title' and a 'text'"),
    ("title: 欢迎\ntext: 亲\n", "must be a list"),
    ("- title: 欢迎\n  text: 亲\n  keywords: 你好\n", "'keywords' must be a list"),
    ("- [\n", "not valid YAML"),
]
# fmt: on


@pytest.mark.parametrize(("text", "says"), BROKEN)
def test_a_broken_file_is_refused_with_where(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "phrases.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="phrases.yml") as info:
        parse(path)
    assert says in str(info.value)


def test_an_unknown_placeholder_names_the_phrase(tmp_path: Path) -> None:
    path = tmp_path / "phrases.yml"
    path.write_text("- title: 催单\n  text: 亲，{shipping.nowhere}发货\n", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="phrase '催单'"):
        PhraseBook(path).check(load_shop(DATA))


def test_no_file_is_no_phrases(tmp_path: Path) -> None:
    assert PhraseBook(tmp_path / "none.yml").search(load_shop(DATA)) == []
