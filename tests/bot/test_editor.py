"""The knowledge base editor on a copy of the shipped data folder: list and search in Chinese,
versions and conflicts, clean diffs, refused input, new entries, the shop's facts, crashes that
leave whole files, the audit log and the lock."""

from __future__ import annotations

import difflib
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.dialogue import knowledge
from bot.errors import ConflictError, InvalidInputError, KnowledgeWriteError, NotFoundError, StoreUnavailableError
from bot.manage.editor import NEW_ENTRIES_FILE, Edit, KnowledgeEditor
from bot.manage.files import LOCK_FILE, edit_lock
from bot.service.store import Store
from tests.conftest import CATALOGUE, DATA


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    """A copy of the shipped knowledge base: the real folder is never written by a test."""
    folder = tmp_path / "faq"
    shutil.copytree(DATA, folder)
    return folder


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'kefu.db'}")
    s.create_schema()
    yield s
    s.close()


@pytest.fixture()
def editor(data: Path, store: Store) -> KnowledgeEditor:
    return KnowledgeEditor(data, store)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != LOCK_FILE}


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """The lines a `git diff` would show as removed and added."""
    a, b = before.splitlines(), after.splitlines()
    removed: list[str] = []
    added: list[str] = []
    # autojunk off: in these files `examples: |` is common enough for difflib to skip it otherwise
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op != "equal":
            removed += a[i1:i2]
            added += b[j1:j2]
    return removed, added


def save(editor: KnowledgeEditor, intent: str, who: str = "carol", **change: object) -> Edit:
    """Update an entry from its current version with some fields changed."""
    e = editor.entry(intent)
    fields = {"title": e.title, "answer": e.answer, "examples": [x.text for x in e.examples], **change}
    return editor.update_entry(intent, version=e.version, who=who, **fields)  # type: ignore[arg-type]


def written_once(data: Path, text: str) -> bool:
    """Whether an example is on exactly one line of the folder (removing it changes one line)."""
    lines = [ln.strip() for p in data.glob("*.yml") for ln in p.read_text(encoding="utf-8").splitlines()]
    return lines.count(f"- {text}") == 1


# -- reading ------------------------------------------------------------------------------------

def test_the_list_holds_every_entry_with_title_family_and_count(editor: KnowledgeEditor) -> None:
    listed = {s.intent: s for s in editor.entries()}
    assert set(CATALOGUE) <= set(listed)
    chart = listed["size.chart"]
    assert chart.family == "size" and chart.title and chart.examples >= 25 and chart.answer.startswith("亲")
    assert chart.match is None


# fmt: off
SEARCHES = [
    ("顺丰",       "shipping.courier", None),        # in its answer or title
    ("尺码表",     "size.chart",       None),
    ("SIZE.Chart", "size.chart",       None),        # the id, any case
    ("16:00",      "shipping.when",    None),        # the answer as filled from shop.yml
    ("尺吗表在哪看", "size.chart",       "尺吗表在哪看"),  # only an example has it: that example is shown
]
# fmt: on


@pytest.mark.parametrize(("query", "intent", "match"), SEARCHES)
def test_search_finds_chinese_in_ids_titles_answers_and_examples(editor: KnowledgeEditor, query: str, intent: str,
                                                                 match: str | None) -> None:
    found = {s.intent: s for s in editor.entries(query)}
    assert intent in found
    assert found[intent].match == match or (match is None and found[intent].match is None)
    assert len(found) < len(editor.entries())


def test_search_for_something_nobody_wrote_finds_nothing(editor: KnowledgeEditor) -> None:
    assert editor.entries("量子纠缠保修") == []


def test_an_entry_comes_with_its_version_files_follow_ups_and_preview(editor: KnowledgeEditor, data: Path) -> None:
    e = editor.entry("size.chart")
    assert len(e.version) == 12 and e.version == editor.entry("size.chart").version
    assert e.home == "size_shipping.yml"
    files = {x.file for x in e.examples}
    assert "size_shipping.yml" in files and len(files) > 1  # examples merge from several files
    assert all((data / x.file).read_text(encoding="utf-8").count(x.text) for x in e.examples)
    assert e.follow_ups and "{" in e.answer and "{" not in e.preview and e.preview.startswith("亲")


def test_unknown_and_malformed_ids(editor: KnowledgeEditor) -> None:
    with pytest.raises(NotFoundError):
        editor.entry("product.unknown")
    with pytest.raises(InvalidInputError):
        editor.entry("Product Unknown")


# -- updating -----------------------------------------------------------------------------------

def test_an_update_changes_only_the_lines_it_means(editor: KnowledgeEditor, data: Path) -> None:
    # Given an entry whose examples live in several files, comments among them
    e = editor.entry("payment.discount")
    away = next(x for x in e.examples if x.file == "real_gaps.yml" and written_once(data, x.text))
    home = next(x for x in e.examples if x.file == e.home and written_once(data, x.text))
    texts = {p: (data / p).read_text(encoding="utf-8") for p in (e.home, "real_gaps.yml")}
    answer = e.answer + "\n会员还可以再享95折哦～"
    examples = [x.text for x in e.examples if x not in (away, home)] + ["双十一有没有跨店满减"]
    # When the title, the answer and the examples change (one removed at home, one elsewhere, one new)
    edit = editor.update_entry("payment.discount", title="优惠活动与折扣", answer=answer, examples=examples,
                               version=e.version, who="carol")
    # Then each file shows exactly those lines, and nothing else moved
    removed, added = changed_lines(texts[e.home], (data / e.home).read_text(encoding="utf-8"))
    assert sorted(removed) == sorted([f"  title: {e.title}", f"    - {home.text}"])
    assert sorted(added) == sorted(["  title: 优惠活动与折扣", "    会员还可以再享95折哦～",
                                    "    - 双十一有没有跨店满减"])
    assert changed_lines(texts["real_gaps.yml"], (data / "real_gaps.yml").read_text(encoding="utf-8")) == \
        ([f"    - {away.text}"], [])
    # And the folder reads back as the edit meant
    now = knowledge.load(data).entries["payment.discount"]
    assert (now.title, now.answer, set(now.examples)) == ("优惠活动与折扣", answer, set(examples))
    assert edit.retrain and edit.added == ("双十一有没有跨店满减",) and set(edit.removed) == {away.text, home.text}
    assert edit.entry.version != e.version


def test_an_answer_alone_needs_no_retraining_and_is_what_the_bot_says(editor: KnowledgeEditor, data: Path) -> None:
    edit = save(editor, "shipping.when", answer="亲，{shipping.cutoff_time}前付款当天发出哦～")
    assert not edit.retrain
    assert knowledge.load(data).answer("shipping.when") == "亲，16:00前付款当天发出哦～"


def test_saving_what_is_stored_writes_nothing(editor: KnowledgeEditor, data: Path, store: Store) -> None:
    before = snapshot(data)
    save(editor, "size.fit")
    assert snapshot(data) == before and editor.changes() == []


def test_a_stale_version_is_refused_and_writes_nothing(editor: KnowledgeEditor, data: Path) -> None:
    # Given two managers who opened the same entry
    seen = editor.entry("returns.policy")
    save(editor, "returns.policy", who="alice", title="退货规则")
    after_first = snapshot(data)
    # When the second saves over the version she read
    with pytest.raises(ConflictError, match="changed by someone else"):
        editor.update_entry("returns.policy", title="七天无理由", answer=seen.answer,
                            examples=[x.text for x in seen.examples], version=seen.version, who="bob")
    # Then the first one's change stands, whole
    assert snapshot(data) == after_first
    assert editor.entry("returns.policy").title == "退货规则"


# fmt: off
BAD_CHANGES = [
    ({"answer": "亲，{shipping.no_such_fact}前发货"}, "no_such_fact"),
    ({"answer": "   \n  "},                            "answer is empty"),
    ({"title": ""},                                     "title is empty"),
    ({"title": "两行\n标题"},                           "one line"),
    ({"examples": []},                                  "at least one example"),
    ({"examples": ["在吗", "  "]},                      "example 2 is empty"),
    ({"examples": ["好" * 201]},                        "longer than 200"),
    ({"examples": ["发货\x00吗"]},                      "control characters"),
    ({"examples": ["发货吗\n运费多少"]},                 "one line"),
]
# fmt: on


@pytest.mark.parametrize(("change", "says"), BAD_CHANGES)
def test_bad_changes_are_refused_before_anything_is_written(editor: KnowledgeEditor, data: Path,
                                                            change: dict[str, object], says: str) -> None:
    before = snapshot(data)
    with pytest.raises(InvalidInputError, match=says):
        save(editor, "shipping.when", **change)
    assert snapshot(data) == before and editor.changes() == []


def test_duplicate_examples_collapse_and_quotes_read_back(editor: KnowledgeEditor, data: Path) -> None:
    e = editor.entry("smalltalk.thanks")
    examples = [x.text for x in e.examples] + ["谢啦亲", " 谢啦亲 ", "谢啦亲", '"好的收到"']
    edit = editor.update_entry("smalltalk.thanks", title=e.title, answer=e.answer, examples=examples,
                               version=e.version, who="carol")
    assert edit.added == ("谢啦亲", "好的收到")
    assert "    - 谢啦亲\n    - 好的收到\n" in (data / e.home).read_text(encoding="utf-8")
    assert {"谢啦亲", "好的收到"} <= set(knowledge.load(data).entries["smalltalk.thanks"].examples)


def test_an_entry_keeps_at_least_one_example(editor: KnowledgeEditor) -> None:
    with pytest.raises(InvalidInputError, match="at least one example"):
        save(editor, "size.stock", examples=[])


# -- new entries --------------------------------------------------------------------------------

def test_a_new_entry_in_a_new_family_is_written_and_loads(editor: KnowledgeEditor, data: Path) -> None:
    # When a manager creates product.authentic
    answer = "亲，本店商品均为品牌正品，支持{returns.window_days}天无理由退货～"
    edit = editor.create_entry("product.authentic", "正品保证", answer, ["是正品吗", "会不会是假货", "保真吗"], "carol")
    # Then it is in shop_entries.yml (a new file with a header), loads, and is listed
    text = (data / NEW_ENTRIES_FILE).read_text(encoding="utf-8")
    assert text.startswith("# ") and "- intent: product.authentic" in text
    kb = knowledge.load(data)
    assert kb.answer("product.authentic") == "亲，本店商品均为品牌正品，支持7天无理由退货～"
    assert set(kb.entries["product.authentic"].examples) == {"是正品吗", "会不会是假货", "保真吗"}
    assert "product.authentic" in {s.intent for s in editor.entries("正品")}
    assert edit.retrain and edit.entry.home == NEW_ENTRIES_FILE and edit.entry.family == "product"
    # And a second one goes below it, leaving the first as it was
    editor.create_entry("product.origin", "产地", "亲，我们的衣服都产自{shipping.warehouse}哦～", ["哪里生产的啊"],
                        "carol")
    assert (data / NEW_ENTRIES_FILE).read_text(encoding="utf-8").startswith(text)
    assert "product.origin" in knowledge.load(data).entries


def test_a_new_entry_in_an_existing_family(editor: KnowledgeEditor, data: Path) -> None:
    editor.create_entry("shipping.gift_wrap", "礼品包装", "亲，下单备注“礼品包装”就可以啦～", ["能帮忙包装成礼物吗"],
                        "carol")
    assert knowledge.load(data).entries["shipping.gift_wrap"].family == "shipping"


def test_an_existing_id_cannot_be_created_again(editor: KnowledgeEditor, data: Path) -> None:
    before = snapshot(data)
    with pytest.raises(ConflictError, match="already exists"):
        editor.create_entry("size.chart", "尺码", "亲～", ["尺码"], "carol")
    assert snapshot(data) == before


@pytest.mark.parametrize("intent", ["Product.Authentic", "product", "product.authentic!", "产品.正品", "1product.x",
                                    "product.", "product.auth.entic", "a." + "b" * 80])
def test_bad_ids_are_refused(editor: KnowledgeEditor, intent: str) -> None:
    with pytest.raises(InvalidInputError, match="family.name"):
        editor.create_entry(intent, "正品", "亲，是正品哦～", ["是正品吗"], "carol")


def test_a_question_given_to_a_new_entry_leaves_the_entry_that_had_it(editor: KnowledgeEditor, data: Path) -> None:
    # Given a question the shop used to hand to a person (an example of human.other)
    taken = next(x for x in knowledge.load(data).entries["human.other"].examples if "正品" in x)
    # When it becomes an example of a new entry
    edit = editor.create_entry("product.authentic", "正品保证", "亲，保证正品哦～", [taken, "是不是真货"], "carol")
    # Then it teaches the new entry only, and both entries' changes are in the log
    kb = knowledge.load(data)
    assert taken in kb.entries["product.authentic"].examples and taken not in kb.entries["human.other"].examples
    assert edit.moved == {taken: "human.other"}
    logged = {c.target: c for c in editor.changes()}
    assert taken in logged["human.other"].before["examples"]  # type: ignore[index]
    assert taken not in logged["human.other"].after["examples"]  # type: ignore[index]


def test_examples_from_the_review_queue_are_added_once(editor: KnowledgeEditor, data: Path) -> None:
    have = editor.entry("returns.refund").examples[0].text
    edit = editor.add_examples("returns.refund", [have, "钱退到哪里了啊", "钱退到哪里了啊"], "dave")
    assert edit.added == ("钱退到哪里了啊",) and edit.retrain
    assert editor.add_examples("returns.refund", ["钱退到哪里了啊"], "dave").added == ()
    assert [(c.who, c.target, c.action) for c in editor.changes()] == [("dave", "returns.refund", "update")]
    with pytest.raises(NotFoundError):
        editor.add_examples("product.nothing", ["x"], "dave")


# -- the shop's facts ---------------------------------------------------------------------------

def test_the_shops_facts_change_in_place_and_answers_follow(editor: KnowledgeEditor, data: Path) -> None:
    # Given shop.yml with its comments and aligned columns
    shop = editor.shop()
    assert shop.fields["shipping.cutoff_time"] == "16:00" and shop.values["shipping"]["cutoff_time"] == "16:00"
    before = (data / "shop.yml").read_text(encoding="utf-8")
    # When a manager changes a time, a fee, a list and a yes/no
    values = {"shipping.cutoff_time": "17:30", "shipping.base_fee": 6, "shipping.hmt_regions": ["香港", "澳门"],
              "payment.cod": False}
    now = editor.update_shop(values, shop.version, "carol")
    # Then only those lines changed, comments kept, and the answers say the new values
    removed, added = changed_lines(before, (data / "shop.yml").read_text(encoding="utf-8"))
    assert len(removed) == len(added) == 4
    assert '  cutoff_time: "17:30"          # orders paid before this time ship the same day' in added
    assert {k: now.fields[k] for k in values} == values
    assert "17:30" in knowledge.load(data).answer("shipping.when")
    change = editor.changes()[0]
    assert (change.target, change.action, change.before, change.after) == \
        ("shop", "shop", {k: shop.fields[k] for k in values}, values)


# fmt: off
BAD_SHOP = [
    ({"shipping.no_such_thing": "x"},        "no editable value"),
    ({"shipping": "x"},                      "no editable value"),   # a section, not a value
    ({"shipping.base_fee": "八块"},          "is a number"),
    ({"payment.cod": "yes"},                 "true or false"),
    ({"shipping.cutoff_time": 17},           "is a text"),
    ({"shipping.remote_regions": "新疆"},    "list of texts"),
    ({"shipping.cutoff_time": "16:00\n17"},  "one line"),
]
# fmt: on


@pytest.mark.parametrize(("values", "says"), BAD_SHOP)
def test_bad_facts_are_refused(editor: KnowledgeEditor, data: Path, values: dict[str, object], says: str) -> None:
    before = snapshot(data)
    with pytest.raises(InvalidInputError, match=says):
        editor.update_shop(values, editor.shop().version, "carol")
    assert snapshot(data) == before


def test_facts_saved_over_a_stale_version_are_refused(editor: KnowledgeEditor) -> None:
    seen = editor.shop().version
    editor.update_shop({"shipping.base_fee": 6}, seen, "alice")
    with pytest.raises(ConflictError):
        editor.update_shop({"shipping.base_fee": 7}, seen, "bob")
    assert editor.shop().fields["shipping.base_fee"] == 6


# -- failures leave whole files -----------------------------------------------------------------

@pytest.mark.parametrize("fails", ["replace", "fsync"])
def test_a_write_that_fails_midway_leaves_the_old_file(editor: KnowledgeEditor, data: Path,
                                                       monkeypatch: pytest.MonkeyPatch, fails: str) -> None:
    before = snapshot(data)

    def broken(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, fails, broken)
    with pytest.raises(KnowledgeWriteError, match="No space left"):
        save(editor, "size.chart", title="尺码对照表", examples=["有哪些尺码", "新问题"])
    monkeypatch.undo()
    assert snapshot(data) == before  # no temporary file left either
    assert knowledge.load(data).entries["size.chart"].title == editor.entry("size.chart").title
    assert editor.changes() == []


def _crash_while_writing(data: Path, db: str) -> None:
    """In a child process: the process dies after the new file is on disk, before it replaces the old."""
    def die(*args: object) -> None:
        os._exit(9)

    editor = KnowledgeEditor(data, Store(db))
    e = editor.entry("size.chart")
    os.replace = die  # type: ignore[assignment]
    editor.update_entry("size.chart", title="尺码对照表", answer=e.answer, examples=["新问题"], version=e.version,
                        who="carol")


def test_a_process_killed_mid_write_leaves_the_old_file_whole(data: Path, store: Store, tmp_path: Path) -> None:
    before, examples = snapshot(data), knowledge.load(data).entries["size.chart"].examples
    child = multiprocessing.get_context("fork").Process(target=_crash_while_writing,
                                                         args=(data, f"sqlite:///{tmp_path / 'kefu.db'}"))
    child.start()
    child.join(120)
    assert child.exitcode == 9
    left = snapshot(data)
    assert {k: v for k, v in left.items() if not k.endswith(".tmp")} == before  # a stray temp file at most
    assert knowledge.load(data).entries["size.chart"].examples == examples
    # and the next save goes through (the dead process's lock went with it)
    save(KnowledgeEditor(data, store), "size.chart", title="尺码对照表")


def test_a_change_the_audit_log_cannot_keep_is_undone(editor: KnowledgeEditor, data: Path, store: Store) -> None:
    before = snapshot(data)
    with store.engine.begin() as c:
        c.execute(sa.text("DROP TABLE kb_changes"))
    with pytest.raises(StoreUnavailableError):
        save(editor, "size.chart", title="尺码对照表")
    assert snapshot(data) == before


# -- the audit log and the lock -----------------------------------------------------------------

def test_every_change_is_logged_with_who_and_before_and_after(editor: KnowledgeEditor) -> None:
    old = editor.entry("payment.cod")
    save(editor, "payment.cod", who="alice", title="货到付款说明")
    save(editor, "payment.cod", who="bob", answer=old.answer + "\n运费到付哦～")
    log = editor.changes()
    assert [(c.who, c.target, c.action) for c in log] == [("bob", "payment.cod", "update"),
                                                          ("alice", "payment.cod", "update")]
    assert log[1].before["title"] == old.title and log[1].after["title"] == "货到付款说明"  # type: ignore[index]
    assert log[0].after["answer"].endswith("运费到付哦～") and log[0].at.endswith("+00:00")  # type: ignore[index]
    assert log[0].after["version"] == editor.entry("payment.cod").version  # type: ignore[index]
    assert [c.who for c in editor.changes(limit=1)] == ["bob"]
    assert [c.who for c in editor.changes(before=log[0].id)] == ["alice"]


def test_one_editor_at_a_time(data: Path) -> None:
    # flock is per open file: a second descriptor (another process, another thread) must wait
    with edit_lock(data), pytest.raises(ConflictError, match="being saved"), edit_lock(data, timeout=0.2):
        pass
    with edit_lock(data, timeout=0.2):  # free again once released
        pass
