from __future__ import annotations

import shutil
from pathlib import Path

import opencc
import pytest
import yaml

from bot.dialogue import knowledge
from bot.errors import KnowledgeBaseError
from tests.conftest import CATALOGUE, DATA

FORBIDDEN = ("我不知道", "不行", "那不是我的工作", "你找别人吧")


def test_every_catalogue_id_has_an_answer_and_examples(kb: knowledge.KnowledgeBase) -> None:
    assert set(CATALOGUE) <= set(kb.entries)
    for intent in CATALOGUE:
        answer = kb.answer(intent)
        assert answer and "{" not in answer, intent
        assert len(kb.entries[intent].examples) >= 25, intent


def test_answers_speak_in_the_shops_voice(kb: knowledge.KnowledgeBase) -> None:
    for intent in CATALOGUE:
        answer = kb.answer(intent)
        assert "亲" in answer, intent
        assert not any(p in answer for p in FORBIDDEN), intent


def test_examples_include_traditional_characters(kb: knowledge.KnowledgeBase) -> None:
    to_simplified = opencc.OpenCC("t2s")
    texts, labels = kb.training_pairs()
    traditional = [label for text, label in zip(texts, labels, strict=True) if to_simplified.convert(text) != text]
    assert len(traditional) >= 0.1 * len(texts)
    assert set(traditional) == set(labels)  # every entry has some


def test_answers_are_filled_from_the_shop_config(tmp_path: Path) -> None:
    # Given a shop that changes its cut-off time
    data = tmp_path / "faq"
    shutil.copytree(DATA, data)
    shop = yaml.safe_load((data / "shop.yml").read_text(encoding="utf-8"))
    shop["shipping"]["cutoff_time"] = "17:45"
    (data / "shop.yml").write_text(yaml.safe_dump(shop, allow_unicode=True), encoding="utf-8")
    # When the knowledge base is loaded
    kb = knowledge.load(data)
    # Then the answer says the new value
    assert "17:45" in kb.answer("shipping.when")


def _faq_with(tmp_path: Path, name: str, text: str) -> Path:
    """A knowledge-base folder of the shop's config and one file `name` holding `text`."""
    data = tmp_path / "faq"
    data.mkdir()
    shutil.copy(DATA / "shop.yml", data / "shop.yml")
    (data / name).write_text(text, encoding="utf-8")
    return data


def test_unknown_placeholder_names_the_problem(tmp_path: Path) -> None:
    data = _faq_with(tmp_path, "x.yml", "- intent: a.b\n  answer: 亲，{shipping.nope}\n  examples: |\n    - 你好\n")
    with pytest.raises(KnowledgeBaseError, match="shipping.nope|nope"):
        knowledge.load(data)


def test_malformed_yaml_names_the_file(tmp_path: Path) -> None:
    data = _faq_with(tmp_path, "broken.yml", "- intent: a.b\n  answer: [unclosed\n")
    with pytest.raises(KnowledgeBaseError, match="broken.yml"):
        knowledge.load(data)


def test_entry_without_answer_is_refused(tmp_path: Path) -> None:
    data = _faq_with(tmp_path, "x.yml", "- intent: a.b\n  examples: |\n    - 你好\n")
    with pytest.raises(KnowledgeBaseError, match="no answer for a.b"):
        knowledge.load(data)


def test_examples_of_one_entry_merge_across_files(tmp_path: Path) -> None:
    data = tmp_path / "faq"
    shutil.copytree(DATA, data)
    (data / "zz_more.yml").write_text("- intent: shipping.when\n  examples: |\n    - 礼拜天也寄件不\n",
                                      encoding="utf-8")
    kb = knowledge.load(data)
    assert "礼拜天也寄件不" in kb.entries["shipping.when"].examples
    assert kb.entries["shipping.when"].answer == knowledge.load(DATA).entries["shipping.when"].answer


def test_two_answers_for_one_entry_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "faq"
    shutil.copytree(DATA, data)
    (data / "zz_more.yml").write_text("- intent: shipping.when\n  answer: 马上发\n", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="already has an answer"):
        knowledge.load(data)
