from __future__ import annotations

from dataclasses import replace

from bot.dialogue.policy import Evidence, SessionState, decide
from bot.dialogue.policy import one_ranking as decide_one
from bot.dialogue.results import Reason
from bot.dialogue.thresholds import Thresholds, thresholds_for
from bot.language.model import IntentPrediction as P

TH = Thresholds(answer=0.55, margin=0.15, suggest=0.6, human=0.35)


def test_confident_faq_entry_is_answered() -> None:
    d = decide_one([P("shipping.when", 0.9), P("shipping.eta", 0.05), P("human.other", 0.05)], TH)
    assert (d.action, d.intent, d.route) == ("answer", "shipping.when", "faq")


def test_rule_beats_a_confident_classifier() -> None:
    d = decide_one([P("returns.refund", 0.95), P("human.complaint", 0.05)], TH, rule=Reason.COMPLAINT)
    assert (d.action, d.intent, d.reason) == ("handoff", "human.complaint", Reason.COMPLAINT)


def test_human_entry_on_top_hands_off_with_its_reason() -> None:
    d = decide_one([P("human.problem", 0.5), P("returns.how", 0.4), P("size.fit", 0.1)], TH)
    assert (d.route, d.intent, d.reason) == ("human", "human.problem", Reason.PROBLEM)


def test_human_mass_hands_off_even_when_a_faq_entry_leads() -> None:
    d = decide_one([P("size.chart", 0.4), P("human.other", 0.2), P("human.problem", 0.2), P("size.fit", 0.2)], TH)
    assert (d.route, d.intent, d.reason) == ("human", "human.other", Reason.OUT_OF_SCOPE)


def test_close_runner_up_gives_suggestions_not_an_answer() -> None:
    d = decide_one([P("returns.fee", 0.45), P("returns.how", 0.40), P("human.other", 0.1), P("size.fit", 0.05)], TH)
    assert d.action == "suggest"
    assert [s.intent for s in d.suggestions[:2]] == ["returns.fee", "returns.how"]


def test_low_confidence_clarifies_once_then_hands_off() -> None:
    ranking = [P("size.fit", 0.18), P("size.chart", 0.15), P("shipping.eta", 0.12), P("human.other", 0.1),
               P("payment.cod", 0.1), P("returns.fee", 0.1), P("payment.invoice", 0.1), P("size.stock", 0.15)]
    first = decide_one(ranking, TH, fallbacks=0)
    second = decide_one(ranking, TH, fallbacks=1)
    assert (first.action, first.reason) == ("clarify", Reason.LOW_CONFIDENCE)
    assert (second.action, second.reason) == ("handoff", Reason.REPEATED_FALLBACK)


def test_a_weak_human_entry_on_top_does_not_hand_off_alone() -> None:
    # Human entries together stay under the threshold: the FAQ side is offered, not a person.
    d = decide_one([P("human.complaint", 0.25), P("payment.discount", 0.24), P("payment.invoice", 0.23),
                P("payment.methods", 0.2), P("size.fit", 0.08)], TH)
    assert d.action == "suggest" and d.route == "faq"
    assert [s.intent for s in d.suggestions] == ["payment.discount", "payment.invoice", "payment.methods"]


def test_likely_human_message_is_never_answered_even_if_an_faq_entry_looks_sure() -> None:
    d = decide_one([P("shipping.track", 0.6), P("human.complaint", 0.38), P("size.fit", 0.02)],
               Thresholds(answer=0.5, margin=0.1, suggest=0.6, human=0.35))
    assert (d.action, d.reason) == ("handoff", Reason.COMPLAINT)


def test_clear_small_talk_is_answered_below_the_faq_threshold() -> None:
    th = Thresholds(answer=0.85, margin=0.1, suggest=0.6, human=0.5)
    d = decide_one([P("smalltalk.thanks", 0.7), P("size.fit", 0.1), P("human.other", 0.2)], th)
    assert (d.action, d.intent) == ("answer", "smalltalk.thanks")
    # An FAQ entry as sure gets quick replies instead: a wrong answer there misleads.
    d = decide_one([P("size.fit", 0.7), P("size.chart", 0.1), P("human.other", 0.2)], th)
    assert d.action == "suggest"


# -- the whole decision over the evidence about a message, and the state it leaves ------------------
SURE = [P("shipping.when", 0.9), P("shipping.eta", 0.05), P("human.other", 0.05)]
UNSURE = [P("size.fit", 0.18), P("size.chart", 0.15), P("shipping.eta", 0.12), P("human.other", 0.1),
          P("payment.cod", 0.1), P("returns.fee", 0.1), P("payment.invoice", 0.1), P("size.stock", 0.15)]


def test_an_answer_resets_the_fallbacks_and_remembers_the_entry() -> None:
    d, after = decide(Evidence("什么时候发货", SURE, state=SessionState(fallbacks=1, last_intent="size.fit")), TH)
    assert (d.action, d.intents, after) == ("answer", ["shipping.when"], SessionState(0, "shipping.when"))


def test_in_a_chat_unsure_turns_get_quick_replies_and_the_third_in_a_row_a_person() -> None:
    first, after = decide(Evidence("嗯", UNSURE), TH)
    assert (first.action, after.fallbacks) == ("suggest", 1)  # below the lone threshold, a chat still offers
    second, after = decide(Evidence("嗯", UNSURE, state=after), TH)
    assert (second.action, after.fallbacks) == ("suggest", 2)
    third, after = decide(Evidence("嗯", UNSURE, state=after), TH)
    assert (third.action, third.reason, after.fallbacks) == ("handoff", Reason.REPEATED_FALLBACK, 0)
    # An answer in between starts the count again.
    _, after = decide(Evidence("发货", SURE, state=SessionState(fallbacks=2)), TH)
    assert after.fallbacks == 0


def test_nothing_to_classify_asks_then_hands_off() -> None:
    d, after = decide(Evidence("", []), TH)
    assert (d.action, after.fallbacks) == ("clarify", 1)
    d, after = decide(Evidence("", [], state=after), TH)
    assert (d.action, after.fallbacks) == ("clarify", 2)
    d, _ = decide(Evidence("", [], state=after), TH)
    assert (d.action, d.reason) == ("handoff", Reason.REPEATED_FALLBACK)


def test_in_a_chat_the_classifiers_person_is_offered_quick_replies_until_clearly_a_persons_job() -> None:
    th = Thresholds(answer=0.55, margin=0.15, suggest=0.6, human=0.35, human_chat=0.6)
    ranking = [P("human.other", 0.45), P("size.chart", 0.3), P("size.fit", 0.15), P("shipping.fee", 0.1)]
    about = SessionState(last_intent="size.chart", last_text="尺码表发我看下")  # a chat with a topic
    chat, _ = decide(Evidence("这个能装在墙上吗", ranking, state=about), th)
    lone, _ = decide(Evidence("这个能装在墙上吗", ranking, lone=True), th)
    assert chat.action == "suggest" and [p.intent for p in chat.suggestions][:2] == ["size.chart", "size.fit"]
    assert (lone.action, lone.reason) == ("handoff", Reason.OUT_OF_SCOPE)
    clear = [P("human.other", 0.7), P("size.chart", 0.3)]
    assert decide(Evidence("能帮我装一下吗", clear, state=about), th)[0].action == "handoff"
    # ...and so is any person's job the classifier alone reads (a rule would hand it off at once).
    problem = [P("human.problem", 0.45), P("returns.how", 0.3), P("size.fit", 0.25)]
    assert decide(Evidence("有点问题", problem, state=about), th)[0].action == "suggest"
    assert decide(Evidence("有点问题", problem, rule=Reason.PROBLEM, state=about), th)[0].action == "handoff"


def test_a_chats_first_question_that_is_likely_a_persons_job_goes_to_one() -> None:
    # 窗帘能定做尺寸吗 as the chat's first question (after a greeting at most): no topic for its human
    # mass to come from, and the human entries lead the best FAQ entry by far.
    th = Thresholds(answer=0.55, margin=0.15, suggest=0.6, human=0.35, human_chat=0.6)
    led = [P("human.other", 0.45), P("size.chart", 0.26), P("size.fit", 0.11), P("payment.methods", 0.02)]
    for state in (SessionState(), SessionState(last_intent="smalltalk.greeting", last_text="在吗")):
        d, _ = decide(Evidence("窗帘能定做尺寸吗", led, state=state), th)
        assert (d.action, d.intent, d.reason) == ("handoff", "human.other", Reason.OUT_OF_SCOPE)
    # With a topic before it, the same reading is offered as quick replies (a fragment may lean on it)...
    topic = SessionState(last_intent="size.chart", last_text="尺码表发我看下")
    assert decide(Evidence("窗帘能定做尺寸吗", led, state=topic), th)[0].action == "suggest"
    # ...and a first question whose FAQ reading is close to the human one is offered too, as is a closing.
    close = [P("human.other", 0.42), P("size.stock", 0.40), P("size.chart", 0.1)]
    assert decide(Evidence("保温杯有粉色吗", close), th)[0].action == "suggest"
    weak = [P("human.other", 0.3), P("size.stock", 0.1), P("size.chart", 0.1), P("returns.how", 0.1)]
    assert decide(Evidence("这个呢", weak), th)[0].action != "handoff"
    assert decide(Evidence("好 那我再看看", led, closing=True), th)[0].route == "faq"
    # The bar is a share of the chat's handoff mass: an operator who raises that raises it too.
    strict = Thresholds(answer=0.55, margin=0.15, suggest=0.6, human=0.35, human_chat=1.0)
    assert decide(Evidence("窗帘能定做尺寸吗", led), strict)[0].action == "suggest"


def test_a_trigger_taken_back_takes_its_entry_out_of_the_ranking() -> None:
    ranking = [P("human.request", 0.7), P("shipping.when", 0.25), P("shipping.eta", 0.05)]
    d, _ = decide(Evidence("不用转人工 什么时候发", ranking, taken_back=frozenset({Reason.REQUESTED})), TH)
    assert (d.action, d.intent) == ("answer", "shipping.when") and abs(d.confidence - 0.25 / 0.3) < 1e-9
    assert decide(Evidence("转人工", ranking), TH)[0].action == "handoff"


def test_a_shopper_who_wants_no_person_is_not_handed_to_one_by_the_classifier() -> None:
    # 不需要人工 你直接告诉我加几块就行: the catch-all human entry leads, but the shopper said no person.
    ranking = [P("human.other", 0.33), P("shipping.courier", 0.3), P("human.complaint", 0.09),
               P("shipping.fee", 0.08), P("human.request", 0.2)]
    d, _ = decide(Evidence("不需要人工 你直接告诉我加几块就行", ranking, taken_back=frozenset({Reason.REQUESTED})), TH)
    assert d.action in ("answer", "suggest") and d.intent == "shipping.courier"
    assert all(not p.intent.startswith("human.") for p in d.ranking)
    # Taking back a complaint keeps the other human entries: 不是投诉 东西坏了 is still a person's job.
    broken = [P("human.problem", 0.6), P("human.complaint", 0.3), P("size.fit", 0.1)]
    d, _ = decide(Evidence("不是投诉 东西坏了", broken, taken_back=frozenset({Reason.COMPLAINT})), TH)
    assert (d.action, d.intent) == ("handoff", "human.problem")


def test_a_lone_message_that_would_be_clarified_is_a_low_confidence_handoff() -> None:
    d, _ = decide(Evidence("嗯", UNSURE, lone=True), TH)
    assert (d.action, d.intent, d.reason) == ("handoff", "human.other", Reason.LOW_CONFIDENCE)
    assert d.ranking == UNSURE


def test_an_unclear_follow_up_is_read_with_the_topic_it_continues() -> None:
    d, _ = decide(Evidence("那退货呢", UNSURE, context=[P("returns.how", 0.9), P("size.fit", 0.05)]), TH)
    assert (d.action, d.intent, d.ranking[0].intent) == ("answer", "returns.how", "returns.how")
    # ...but a rule beats the context.
    d, _ = decide(Evidence("那退货呢", UNSURE, rule=Reason.COMPLAINT, context=[P("returns.how", 0.9)]), TH)
    assert d.action == "handoff"


def test_a_follow_up_both_readings_leave_open_is_decided_on_their_mean() -> None:
    # 1.5的呢 after a size question: alone it looks like small talk (好的呢), joined it is unsure too.
    alone = [P("smalltalk.thanks", 0.52), P("size.recommend", 0.14), P("human.other", 0.1), P("size.chart", 0.1)]
    joined = [P("size.recommend", 0.5), P("size.chart", 0.3), P("smalltalk.thanks", 0.05)]
    d, _ = decide(Evidence("1.5的呢", alone, context=joined), TH)
    assert (d.action, d.intent) == ("suggest", "size.recommend")
    assert [round(p.confidence, 3) for p in d.ranking[:2]] == [0.32, 0.285]
    # A message sure on its own is not bent by the previous one.
    d, _ = decide(Evidence("发什么快递", SURE, context=[P("size.fit", 0.9)]), TH)
    assert (d.action, d.intent) == ("answer", "shipping.when")


def test_each_clear_question_of_a_message_is_answered() -> None:
    clauses = [[P("shipping.when", 0.9), P("size.fit", 0.1)], [P("shipping.fee", 0.8), P("size.fit", 0.2)],
               [P("smalltalk.thanks", 0.9), P("size.fit", 0.1)]]
    d, _ = decide(Evidence("什么时候发货？包邮吗？谢谢", SURE, clauses=clauses), TH)
    assert d.intents == ["shipping.when", "shipping.fee"]  # the whole's entry once, small talk left out
    d, _ = decide(Evidence("发货？包邮？", UNSURE, clauses=clauses[:2]), TH)  # the whole unclear, its parts not
    assert (d.action, d.intents) == ("answer", ["shipping.when", "shipping.fee"])


def test_thresholds_are_resolved_in_one_place() -> None:
    trained = {"answer": 0.6, "margin": 0.05, "suggest": 0.8, "human": 0.4, "unknown": 1}
    assert thresholds_for(trained) == Thresholds(answer=0.6, margin=0.05, suggest=0.8, human=0.4)
    assert thresholds_for(trained, {"answer": 0.9, "human": None}) == Thresholds(0.9, 0.05, 0.8, 0.4)
    assert thresholds_for(None) == Thresholds()


def test_a_message_goes_to_a_person_for_what_it_says_not_for_what_came_before() -> None:
    # 黑色呢 after 耳机有白色吗 (answered, not handed off): read with the conversation the catch-all human
    # entry leads, but the message on its own carries little of it: the FAQ entries decide.
    th = Thresholds(answer=0.75, margin=0.05, suggest=0.6, human=0.4, human_chat=0.5)
    in_chat = [P("human.other", 0.48), P("size.stock", 0.36), P("human.problem", 0.05), P("size.chart", 0.04)]
    alone = [P("size.stock", 0.47), P("human.other", 0.37), P("smalltalk.thanks", 0.03)]
    d, _ = decide(Evidence("黑色呢", in_chat, alone=alone), th)
    assert d.route == "faq" and d.intent == "size.stock"
    assert all(not p.intent.startswith("human.") for p in d.ranking)
    # A message that says it alone still goes to a person; so does a rule, and a lone message.
    said = [P("human.other", 0.6), P("size.stock", 0.3)]
    assert decide(Evidence("能刻字吗", in_chat, alone=said), th)[0].action == "handoff"
    assert decide(Evidence("黑色呢", in_chat, alone=alone, rule=Reason.PROBLEM), th)[0].action == "handoff"
    assert decide(Evidence("黑色呢", in_chat, alone=alone, lone=True), th)[0].action == "handoff"


def test_after_a_handoff_the_chat_is_about_its_entry_and_what_the_shopper_adds_stays_the_persons() -> None:
    th = Thresholds(answer=0.75, margin=0.05, suggest=0.6, human=0.4, human_chat=0.5)
    broken = [P("human.problem", 0.9), P("returns.exchange", 0.05)]
    d, after = decide(Evidence("收到就是坏的", broken, state=SessionState(last_intent="size.stock")), th)
    assert (d.action, after.last_intent) == ("handoff", "human.problem")  # the topic from now
    # 还是不行 read after the problem: the conversation brings the human mass, and it is the person's
    # chat now, so it is not left to the FAQ entries as a fragment after an answer would be.
    in_chat = [P("human.problem", 0.55), P("returns.exchange", 0.3), P("size.fit", 0.1)]
    alone = [P("returns.exchange", 0.45), P("human.problem", 0.3), P("size.fit", 0.2)]
    d, after = decide(Evidence("还是不行", in_chat, alone=alone, state=after), th)
    assert (d.action, d.intent, after.last_intent) == ("handoff", "human.problem", "human.problem")
    d, _ = decide(Evidence("还是不行", in_chat, alone=alone, state=SessionState(last_intent="size.stock")), th)
    assert d.route == "faq"  # the same reading after an answered question: the FAQ entries decide


def test_after_a_problem_an_exchange_is_its_remedy_and_the_persons() -> None:
    """换个新的给我 after a broken item: a replacement, which the person arranges, not the FAQ's exchange of a
    size or colour; a question about the terms (运费谁出) is still the bot's, and so is an exchange elsewhere."""
    th = Thresholds(answer=0.75, margin=0.05, suggest=0.6, human=0.4, human_chat=0.5)
    exchange = [P("returns.exchange", 0.9), P("human.problem", 0.05), P("returns.how", 0.05)]
    problem = SessionState(last_intent="human.problem")
    d, after = decide(Evidence("直接给我换台新的吧", exchange, alone=exchange, state=problem), th)
    assert (d.action, d.intent, d.reason, after.last_intent) == ("handoff", "human.problem", Reason.PROBLEM,
                                                                  "human.problem")
    unsure = [P("returns.exchange", 0.5), P("returns.how", 0.3), P("human.problem", 0.2)]
    assert decide(Evidence("能换个对的吗", unsure, alone=unsure, state=problem), th)[0].route == "human"
    fee = [P("returns.fee", 0.9), P("returns.exchange", 0.1)]
    assert decide(Evidence("换货运费谁出", fee, alone=fee, state=problem), th)[0].intent == "returns.fee"
    for state in (SessionState(last_intent="size.chart"), SessionState(last_intent="human.request")):
        assert decide(Evidence("能换个大一码的吗", exchange, alone=exchange, state=state), th)[0].intent \
            == "returns.exchange"


def test_a_closing_the_bot_is_unsure_of_is_answered_as_one() -> None:
    # 好 那我拍两个: its words pull towards stock and sizes, but it asks nothing.
    pulled = [P("size.stock", 0.4), P("smalltalk.thanks", 0.3), P("size.chart", 0.2), P("human.other", 0.1)]
    d, after = decide(Evidence("好 那我拍两个", pulled, closing=True), TH)
    assert (d.action, d.intent, d.intents) == ("answer", "smalltalk.thanks", ["smalltalk.thanks"])
    assert after.fallbacks == 0
    assert decide(Evidence("好 那我拍两个", pulled), TH)[0].action == "suggest"  # the form is what decides
    # Not a third unsure turn handed off, nor a lone message handed off as unsure.
    assert decide(Evidence("算了 先不买了", UNSURE, closing=True, state=SessionState(fallbacks=2)), TH)[0].intent \
        == "smalltalk.thanks"
    assert decide(Evidence("算了 先不买了", UNSURE, closing=True, lone=True), TH)[0].route == "faq"


def test_a_closing_keeps_a_sure_answer_and_a_rule() -> None:
    sure = [P("shipping.courier", 0.9), P("shipping.fee", 0.05), P("human.other", 0.05)]
    assert decide(Evidence("好的 那就发顺丰", sure, closing=True), TH)[0].intent == "shipping.courier"
    d, _ = decide(Evidence("算了 我要投诉", UNSURE, closing=True, rule=Reason.COMPLAINT), TH)
    assert (d.action, d.reason) == ("handoff", Reason.COMPLAINT)
    human = [P("human.problem", 0.7), P("size.stock", 0.2), P("smalltalk.thanks", 0.1)]
    assert decide(Evidence("好吧 等你们处理", human, closing=True), TH)[0].route == "human"
    # In a chat a person already has, the same closing asks for no second person: it is answered as one,
    # and the chat stays about the handoff's entry.
    handed = SessionState(last_intent="human.problem")
    d, after = decide(Evidence("好吧 等你们处理", human, closing=True, alone=human, state=handed), TH)
    assert (d.action, d.intent, after.last_intent) == ("answer", "smalltalk.thanks", "human.problem")
    assert decide(Evidence("好吧 等你们处理", human, alone=human, state=handed), TH)[0].route == "human"  # the form
    d, _ = decide(Evidence("算了 我要投诉", human, closing=True, rule=Reason.COMPLAINT, state=handed), TH)
    assert d.reason is Reason.COMPLAINT  # a rule still fires
    # A likely entry is offered: 算了 不要了 may cancel an order.
    likely = [P("returns.cancel", 0.52), P("smalltalk.thanks", 0.3), P("size.stock", 0.18)]
    d, _ = decide(Evidence("算了 不要了", likely, closing=True), TH)
    assert (d.action, d.suggestions[0].intent) == ("suggest", "returns.cancel")


def test_a_closing_after_an_answer_is_neither_a_handoff_nor_the_question_it_closes() -> None:
    th = Thresholds(answer=0.75, margin=0.05, suggest=0.6, human=0.5, human_chat=0.5)
    # 好 等你们消息 after the bot answered a double charge: its words read like a complaint, it asks nothing.
    answered = SessionState(last_intent="payment.failed", last_text="还扣了两次钱")
    waits = [P("human.complaint", 0.68), P("smalltalk.thanks", 0.16), P("human.other", 0.04), P("payment.failed", 0.03)]
    d, after = decide(Evidence("好 等你们消息", waits, closing=True, alone=waits, state=answered), th)
    assert (d.action, d.intent, after.fallbacks) == ("answer", "smalltalk.thanks", 0)
    assert decide(Evidence("好 等你们消息", waits, alone=waits, state=answered), th)[0].route == "human"  # the form
    assert decide(Evidence("好 等你们消息", waits, closing=True, alone=waits), th)[0].route == "human"  # first
    # 那算了 不买了 after a bargaining answer: joined to 能便宜点吗 it reads as the discount, yet it closes it.
    bargained = SessionState(last_intent="payment.discount", last_text="能便宜点吗 老顾客了")
    alone = [P("payment.discount", 0.42), P("human.complaint", 0.32), P("smalltalk.thanks", 0.08),
             P("returns.cancel", 0.06)]
    joined = [P("payment.discount", 0.86), P("human.complaint", 0.09), P("human.other", 0.01)]
    d, _ = decide(Evidence("那算了 不买了", alone, context=joined, closing=True, alone=alone, state=bargained), th)
    assert (d.action, d.intent) == ("answer", "smalltalk.thanks")
    # A follow-up that asks (那学生呢) still leans on the question it continues.
    d, _ = decide(Evidence("那学生呢", alone, context=joined, alone=alone, state=bargained), th)
    assert (d.action, d.intent) == ("answer", "payment.discount")


def test_a_handoff_as_sure_as_an_answer_is_not_bent_to_the_question_before() -> None:
    th = Thresholds(answer=0.75, margin=0.05, suggest=0.6, human=0.5, human_chat=0.5)
    # 要自己装吗 after 走物流还是快递: who installs the goods is a person's question, read in the chat and alone;
    # joined to the courier question it reads as that question.
    courier = SessionState(last_intent="shipping.courier", last_text="走物流还是快递")
    own = [P("human.other", 0.76), P("returns.how", 0.04), P("shipping.courier", 0.03), P("shipping.fee", 0.02)]
    alone = [P("human.other", 0.82), P("returns.how", 0.03), P("payment.discount", 0.02)]
    joined = [P("shipping.courier", 0.88), P("shipping.track", 0.07), P("human.other", 0.01)]
    d, _ = decide(Evidence("要自己装吗", own, context=joined, alone=alone, state=courier), th)
    assert (d.action, d.intent, d.reason) == ("handoff", "human.other", Reason.OUT_OF_SCOPE)
    # 三天了都没更新 after a tracking answer leans to a complaint, less surely than an answer must be: it goes
    # on with the question it continues.
    tracking = SessionState(last_intent="shipping.track", last_text="订单号查不到物流")
    own = [P("human.complaint", 0.42), P("human.problem", 0.19), P("shipping.track", 0.15), P("shipping.address", 0.05)]
    alone = [P("human.complaint", 0.50), P("human.problem", 0.21), P("shipping.track", 0.06)]
    joined = [P("shipping.track", 0.95), P("human.problem", 0.03), P("human.complaint", 0.01)]
    d, _ = decide(Evidence("三天了都没更新", own, context=joined, alone=alone, state=tracking), th)
    assert (d.action, d.intent) == ("answer", "shipping.track")
    # A third unsure turn's handoff is not sure for its best FAQ entry's probability (a margin set above it).
    # (Its own reading is of another family: one of the same would be another aspect of the topic, _new_aspect.)
    unsure = [P("size.chart", 0.76), P("size.fit", 0.2), P("human.other", 0.04)]
    again = SessionState(fallbacks=2, last_intent="shipping.track", last_text="订单号查不到物流")
    d, _ = decide(Evidence("那个呢", unsure, context=joined, alone=unsure, state=again), replace(th, margin=0.6))
    assert (d.action, d.intent) == ("answer", "shipping.track")


def test_a_ranking_of_only_human_entries_none_likely_is_unsure_not_an_error() -> None:
    """A catalogue with more human.* entries than the ranking holds (the bench's x16 copies) can rank
    only them: below the handoff mass, the bot asks to rephrase, then hands off, as for any unsure turn."""
    ranking = [P("human.other", 0.2), P("human.other_x2", 0.15), P("human.problem", 0.1)]
    th = Thresholds(answer=0.7, margin=0.1, suggest=0.7, human=0.5, human_chat=0.5)
    first = decide_one(ranking, th, chat=True)
    assert (first.action, first.intent, first.reason) == ("clarify", None, Reason.LOW_CONFIDENCE)
    again = decide_one(ranking, th, fallbacks=2, chat=True)
    assert (again.action, again.reason) == ("handoff", Reason.REPEATED_FALLBACK)
    lone, _ = decide(Evidence("随便问问", ranking, lone=True), th)
    assert (lone.action, lone.reason) == ("handoff", Reason.LOW_CONFIDENCE)


def test_a_follow_up_that_reads_as_another_entry_of_the_topics_family_is_not_bent_back_to_it() -> None:
    """sf可以吗 after 运费多少 asks about the courier; the message joined to the question before it reads as
    the postage again. The joined reading decides a follow-up the message leaves open, but not when the
    message on its own reads as another entry of the chat's family: it would repeat the answer given."""
    th = Thresholds(answer=0.75, margin=0.05, suggest=0.6, human=0.5, human_chat=0.5)
    fee = SessionState(last_intent="shipping.fee", last_text="运费多少")
    courier = [P("shipping.courier", 0.69), P("payment.methods", 0.1), P("shipping.fee", 0.05)]
    alone = [P("shipping.courier", 0.64), P("payment.methods", 0.12)]
    joined = [P("shipping.fee", 0.92), P("shipping.courier", 0.04)]
    d, _ = decide(Evidence("sf可以吗", courier, alone=alone, context=joined, state=fee), th)
    assert (d.action, d.intent) == ("suggest", "shipping.courier")
    # Another family on its own (几天能开好 reads as delivery time alone): the topic it continues decides.
    invoice = SessionState(last_intent="payment.invoice", last_text="能开发票吗")
    eta = [P("shipping.eta", 0.4), P("payment.invoice", 0.33), P("shipping.when", 0.07)]
    d, _ = decide(Evidence("几天能开好", eta, alone=[P("shipping.eta", 0.74)], context=[P("payment.invoice", 0.91)],
                           state=invoice), th)
    assert (d.action, d.intent) == ("answer", "payment.invoice")
    # The topic's own entry alone, or a person's: the joined reading is used as before.
    d, _ = decide(Evidence("sf可以吗", courier, alone=[P("shipping.fee", 0.5)], context=joined, state=fee), th)
    assert (d.action, d.intent) == ("answer", "shipping.fee")


def test_a_yes_no_question_of_its_own_is_not_read_as_the_question_before() -> None:
    """要打孔吗 after 退货运费谁出: joined to the question before, the message reads as it again (returns.fee at
    0.99); a yes/no question that states what it asks is no fragment of it. A fragment still is (那多少)."""
    th = Thresholds(answer=0.75, margin=0.05, suggest=0.6, human=0.5, human_chat=0.5)
    fee = SessionState(last_intent="returns.fee", last_text="退货运费谁出")
    own = [P("returns.how", 0.23), P("human.other", 0.13), P("returns.fee", 0.08), P("size.fit", 0.07)]
    joined = [P("returns.fee", 0.99), P("returns.how", 0.01)]
    d, _ = decide(Evidence("要打孔吗", own, alone=own, context=joined, state=fee, own_question=True), th)
    assert d.intent != "returns.fee" and d.action != "answer"
    fragment = [P("size.fit", 0.23), P("human.other", 0.13), P("returns.fee", 0.08)]
    d, _ = decide(Evidence("那多少", fragment, alone=fragment, context=joined, state=fee), th)
    assert (d.action, d.intent) == ("answer", "returns.fee")


def test_a_question_for_a_person_with_nothing_of_the_chats_entry_goes_to_one() -> None:
    """能上门维修吗 after 退货运费谁出: on its own a person's question (human 0.62), with nothing of returns.fee in
    its reading; the conversation's readings lean to the entry before, the shopper asked something else."""
    th = Thresholds(answer=0.75, margin=0.05, suggest=0.6, human=0.5, human_chat=0.5)
    fee = SessionState(last_intent="returns.fee", last_text="退货运费谁出")
    in_chat = [P("returns.fee", 0.45), P("human.other", 0.35), P("returns.how", 0.1)]
    alone = [P("human.other", 0.52), P("human.request", 0.1), P("shipping.address", 0.08)]
    d, _ = decide(Evidence("能上门维修吗", in_chat, alone=alone, state=fee), th)
    assert (d.action, d.intent, d.reason) == ("handoff", "human.other", Reason.OUT_OF_SCOPE)
    # The chat's entry in its own reading (都五天了还没到账 after a refund question): the conversation decides.
    refund = SessionState(last_intent="returns.refund", last_text="退款几天到账")
    in_chat = [P("returns.refund", 0.6), P("human.complaint", 0.3)]
    alone = [P("human.complaint", 0.93), P("returns.refund", 0.03)]
    d, _ = decide(Evidence("都五天了还没到账", in_chat, alone=alone, state=refund,
                           context=[P("returns.refund", 1.0)]), th)
    assert (d.action, d.intent) == ("answer", "returns.refund")
    # Below OFF_TOPIC_HUMAN on its own, or a first question, or a rule: as before.
    weak = [P("human.other", 0.45), P("size.fit", 0.3)]
    assert decide(Evidence("会起球吗", in_chat, alone=weak, state=fee), th)[0].route == "faq"


def test_a_later_yes_no_question_of_its_own_that_reads_as_a_persons_goes_to_one() -> None:
    """After an answer, 能上门维修吗 (human 0.45 on its own, the best FAQ entry 0.2): no fragment the conversation
    would resolve, so, like a chat's first question, it goes to a person when the human entries lead by far.
    A fragment with the same reading (上门呢) is offered the FAQ entries first, as before."""
    th = Thresholds(answer=0.75, margin=0.05, suggest=0.6, human=0.5, human_chat=0.5)
    fee = SessionState(last_intent="returns.fee", last_text="退货运费谁出")
    reading = [P("human.other", 0.45), P("returns.fee", 0.2), P("returns.how", 0.15), P("shipping.fee", 0.1)]
    d, _ = decide(Evidence("能上门维修吗", reading, alone=reading, state=fee, own_question=True), th)
    assert (d.action, d.intent) == ("handoff", "human.other")
    d, _ = decide(Evidence("上门呢", reading, alone=reading, state=fee), th)
    assert (d.action, d.intent) == ("suggest", "returns.fee")
    # While a person is coming, what the shopper adds is the person's anyway; a lead too small is not enough.
    waiting = SessionState(last_intent="human.problem")
    assert decide(Evidence("能上门维修吗", reading, alone=reading, state=waiting, own_question=True), th)[0].action \
        != "answer"
    close = [P("human.other", 0.4), P("returns.fee", 0.3), P("returns.how", 0.2)]
    assert decide(Evidence("能上门维修吗", close, alone=close, state=fee, own_question=True), th)[0].action == "suggest"


def test_two_entries_of_one_family_likelier_together_than_an_answer_must_be_are_both_answered() -> None:
    """安全座椅退货要什么条件: returns.how 0.53 and returns.policy 0.3, neither sure alone, together 0.83; a person
    would answer both (the conditions and how to apply) rather than ask which one was meant."""
    th = Thresholds(answer=0.75, margin=0.05, suggest=0.6, human=0.5, human_chat=0.5)
    reading = [P("returns.how", 0.53), P("returns.policy", 0.3), P("returns.fee", 0.08), P("human.other", 0.05)]
    d, after = decide(Evidence("安全座椅退货要什么条件", reading, alone=reading), th)
    assert (d.action, d.intent, d.intents) == ("answer", "returns.how", ["returns.how", "returns.policy"])
    assert d.reason is Reason.LOW_CONFIDENCE  # neither sure alone: the review queue shows it
    assert d.confidence == 0.53 + 0.3 and after.last_intent == "returns.how" and after.fallbacks == 0
    # Not together likely enough, two families, or small talk: quick replies, as before.
    for ranking in ([P("returns.how", 0.45), P("returns.policy", 0.25), P("returns.fee", 0.2)],
                    [P("returns.how", 0.53), P("shipping.fee", 0.3), P("returns.fee", 0.08)],
                    [P("smalltalk.thanks", 0.45), P("smalltalk.greeting", 0.35), P("returns.fee", 0.1)]):
        assert decide(Evidence("x", ranking, alone=ranking), th)[0].action == "suggest", ranking
    # A lone message (kefu eval) keeps its quick replies; after a handoff the person answers what the bot is unsure of.
    assert decide(Evidence("x", reading, alone=reading, lone=True), th)[0].action == "suggest"
    waiting = SessionState(last_intent="human.problem")
    assert decide(Evidence("x", reading, alone=reading, state=waiting), th)[0].action != "answer"
    # A second question of the message answered too, each entry once.
    d, _ = decide(Evidence("x", reading, alone=reading, clauses=[[P("returns.policy", 0.9)], [P("payment.cod", 0.9)]]),
                  th)
    assert d.intents == ["returns.how", "returns.policy", "payment.cod"]
