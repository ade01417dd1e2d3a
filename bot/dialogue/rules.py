"""Explicit rules that must never fail: a request for a person, a complaint, a problem
with received goods, an edit of the goods ordered always go to a human, whatever the classifier thinks.

Patterns run on normalised text (simplified, lower case, half-width). They are kept
precise: a calm FAQ question must not match (还没收到货 is a tracking question; 签收了
却没收到 is a problem).
"""

from __future__ import annotations

import re

from bot.dialogue.results import Reason

_NEG = r"(?<!不是)(?<!没有)(?<!并非)(?<!非)"

_REQUEST = re.compile(
    r"转(个|一个)?人[工功宫]|转接人工|人工客服|人工服务|找人工|要人工|人工(呢|在吗|回复|处理)|^人工(?=$|[\s,.!?~])"
    r"|真人|活人|直接(转)?人工"
    r"|(你|您)是(不是)?(机器人|ai|自动回复)|(别|不要)(用)?机器人|机器人(吗|\?|回复|听不懂)"
    r"|(找|叫|让)(你们)?(的)?(店长|老板|主管|经理|领导|负责人|掌柜)|(找|要|叫)(个)?(真人|人工)?客服|(找|要|叫|喊)(个|一个)?人工"
    r"|(打|拨)(个)?电话给我|给我(打|回)(个)?电话|客服电话|联系电话多少|回电话"
    r"|听不懂(人话|我说|我的)|答非所问|牛头不对马嘴|驴唇不对马嘴|你在说什么|说了等于没说"
    r"|rengong|human agent|real person|\bhuman\b|换(个|一个)客服"
)

_COMPLAINT = re.compile(
    r"投诉|举报|(?<!\d)(12315|12345|315)(?!\d)|消协|消费者协会|工商局|市场监管|维权|曝光|起诉|律师|报警|法院"
    r"|(给|打|写|留)(你们?)?(个)?差评|中差评|差评|一星(?!期)|(骗子|骗人|诈骗|欺诈|黑店|坑人|坑爹|奸商|垃圾店|无良)"
    r"|垃圾(东西|商家|客服|服务|店)|什么破(店|东西|玩意|服务)|(态度|服务)(也)?(太|真|很|极其|非常)?(差|烂|恶劣)"
    r"|气死|太过分|欺负人|忽悠|虚假(宣传|发货)|赔偿|赔钱|退一赔三|假一赔|平台介入|小二介入|申请介入"
    r"|(\btm\b|特么|尼玛|(?<![我她爸姨舅姑])妈的|你妈(?!妈)|卧槽|我靠|shit|wtf|fuck)"
    r"|再也不(来|买)|拉黑|滚(开|蛋|吧)|你滚|什么玩意|搞什么|有病|耍我|糊弄|敷衍|不要脸"
    r"|(给|讨|要)(我|我们)?(个|一个)?(说法|交代)"  # 要你们给个说法: an account demanded, not an answer
)

_PROBLEM = re.compile(
    _NEG + r"(质量(问题|太差|很差|不行|有问题))"
    r"|(碎了|摔碎|压碎|破了|破损|破洞|有(个)?洞|压坏|压扁|变形了|漏(了|液|水|油|气)|坏了|损坏|烂了)"
    r"|((?<![多减])少(发|寄|给)?了?(一|两|几)?(件|个|双|条|盒|包|瓶|样)|漏发|少发|补发|补寄|缺(少)?(配件|零件|件)|发错|错发|寄错"
    r"|(颜色|型号|款式|东西|货)(发)?(不对|错了)|货不对板|与描述不符|和描述不符|跟图片不一样)"
    r"|(假货|不是正品|山寨|高仿|仿品|翻新机?|二手的)"
    r"|((?<![券卷劵])(?<!红包)过期|变质|发霉|长毛|有虫|生虫|馊了|异味|臭味|很臭|发臭)"
    r"|(开线|脱线|掉色|褪色|染色|起球|掉毛|污渍|脏了|有(个)?(污|斑)|划痕|刮花|瑕疵|线头)"
    r"|(开不了机|不能开机|开不机|无法开机|(?<!开)不开机|充不进电|充不上电|不能充电|黑屏|花屏|死机|坏点|没(有)?声音|不制冷|不加热|不转了"
    r"|失灵|故障|短路|冒烟|有噪音|异响)"
    r"|(签收了?.{0,8}(没|没有|未)(收到|拿到)|(没|没有|未)收到.{0,6}(显示|却|但).{0,4}签收|被(人)?(拿走|冒领)|快递丢|包裹丢|丢件)"
)

# An edit of what was ordered (拍错颜色了 帮我改成灰色, 已经拍了 还能改颜色不, 订单数量改成两个): only a
# person can change an order's goods. The address, the phone, the courier, the invoice, the way of
# paying and the price have their own answers (the shopper changes them, or the entry says how); a
# cancellation is returns.cancel; once the goods arrived, a change is an exchange.
_EDIT = re.compile(r"改(?:成|为)|(?:帮我|给我|帮忙|能|能不能|可以|可不可以|想|要)(?:把.{0,8})?改(?:一?下)?"
                   r"|改(?:一?下)?(?:颜色|色|尺码|码数?|尺寸|规格|型号|款式?|数量|口味|内存|容量|大小|大号|小号)")
_ORDERED = re.compile(r"拍|下单|下的单|订单|付款|付了|付完|买了|已经买")
_NOT_GOODS = re.compile(r"地址|送到|寄到|发到|电话|手机|号码|收货人|名字|姓名|快递|顺丰|物流|发票|抬头|税号"
                        r"|货到付款|到付|付款方式|改价|价格|价钱|取消|收到|到了|签收|评价")


def _order_edit(text: str) -> re.Match[str] | None:
    found = _EDIT.search(text)
    if found is None or not _ORDERED.search(text) or _NOT_GOODS.search(text):
        return None
    return found


_RULES: tuple[tuple[re.Pattern[str], Reason], ...] = (
    (_COMPLAINT, Reason.COMPLAINT),
    (_PROBLEM, Reason.PROBLEM),
    (_REQUEST, Reason.REQUESTED),
)


# "If it arrives broken, who pays the return postage?" asks about policy, not about a parcel:
# a problem word inside a hypothetical clause is left to the classifier.
_IF_BEFORE = re.compile(r"(如果|假如|要是|万一|若是|假设|假使|倘若|if)[^,.!?;，。！？；\s]*$")
_IF_AFTER = re.compile(r"^[^,.!?;，。！？；\s]*的话")


def _hypothetical(text: str, found: re.Match[str]) -> bool:
    return bool(_IF_BEFORE.search(text[: found.start()]) or _IF_AFTER.search(text[found.end():]))


# "Is it genuine? Could it be a fake? Will it pill or fade?" asked before buying (是不是正品, 会不会是
# 假货, 有假货吗, 保证不是高仿吧, 这件会起球吗, 会不会掉色, 容易变形吗) is a question about the goods,
# not a fake or a defect received: left to the classifier, which knows both (and a shop can teach it an
# answer). A fake or a defect stated (收到的是假货, 你们卖假货, 洗了一次就起球, 怎么会掉色) still hands off.
_FAKE = re.compile(r"假货|不是正品|山寨|高仿|仿品|翻新机?|二手的?")
_QUALITY = re.compile(r"起球|掉色|褪色|染色|掉毛|开线|脱线|变形了?|漏(水|液|气|油)?|异味|臭味")
_ASKS_BEFORE = re.compile(r"(?<!怎么)(?<!为什么)(?<!为啥)(?<!咋)"
                          r"(是不是|会不会|会|容易|有没有|有|是否|能否|保证|保不保证|敢保证|怕|担心)"
                          r"[^,.!?;，。！？；\s了就]{0,3}$")
_ASKS_AFTER = re.compile(r"^[^,.!?;，。！？；\s了]{0,3}(吗|么|嘛|不|没)?\s*[?？]?$")
# A defect word is a question only when asked as one (会起球吗, 会不会掉色): 收到有异味, 有点掉色 state it.
_A_NOT_A = re.compile(r"(是不是|会不会|有没有|是否|容不容易)[^,.!?;，。！？；\s]{0,3}$")
_QUESTION_END = re.compile(r"^[^,.!?;，。！？；\s]{0,3}(吗|么|嘛|不|没|[?？])")


def _asks_before_buying(text: str, found: re.Match[str]) -> bool:
    word = found.group(0)
    fake, quality = _FAKE.fullmatch(word), _QUALITY.fullmatch(word)
    if not (fake or quality):
        return False
    before, after = text[: found.start()], text[found.end():]
    a_not_a = word.startswith("不是") and before.endswith("是")  # 是不是正品
    asked = (a_not_a or _ASKS_BEFORE.search(before)) and _ASKS_AFTER.search(after)
    if quality:
        return bool(asked and (_A_NOT_A.search(before) or _QUESTION_END.match(after)))
    return bool(asked)


# "I do not want a person, I only ask when it ships": a negation or a concession right before a
# trigger word (不用转人工, 不是要投诉, 不会给差评, 倒不至于坏了, 没有质量问题, 别担心不会投诉) takes it
# back; the message then goes to the classifier like any other. A-not-A questions (是不是骗子, 会不会
# 坏, 有没有质量问题) are questions, not negations; a negation of something else (我没办法了) is far
# from the trigger. The words between may only be light ones (要 想 给 找 说 你们 的...).
_NEGATION = re.compile(
    r"(?:(?<![是])不是|(?<![要])不要|(?<![用])不用|不需要?|无需|不必|用不着|(?<![会])不会|不想|不打算|不找|别|并不|并没有?"
    r"|(?<![有])没有?|没要|没想过?|倒不至于|不至于|也不是|谈不上|算不上|不算|犯不着|没必要|大可不必|哪用得着|哪会"
    r"|又不是|不是非得|不麻烦|不劳烦|(?<![是要用会想再])不)"
    r"(?:要|想|打算|去|给|找|跟|说|用|再|需要|你们|你|我|了|是|在|的意思|人|个|打|有|啥|怀疑|急着|着急){0,4}\s*$")
# ...or conceded right after it (差评倒不至于, 转人工就不用了, 质量问题倒没有, 投诉就算了), the clause ending there.
# Not a bare 算了 (给差评算了, 转人工算了: "I might as well"), nor a bare 没有 (坏了没有 asks).
# A question the shopper answers at once is one too (转人工? 不用不用, 给差评? 不至于, 有异味? 没有啊), the
# answer ending there (转人工? 不要再让我等了 and 转人工? 没有人工吗 still ask), but a concession asked back
# is not (差评不至于? 我偏要给).
_CONCEDED = re.compile(r"(?:的话|的事)?(?:(?:就|也|倒|倒是|倒也|还是|暂时|先)?"
                       r"(?:不用了?|不必了?|不需要了?|用不着|免了|免谈|不至于|没必要了?|大可不必|犯不着|谈不上)"
                       r"|(?:就|还是)算了|倒(?:是|也)?没有)(?=$|[\s,.!~;，。！啦哈啊吧呢])"
                       r"|(?:吗|呢)?[?？]\s*(?:不用|不要|不需要|不至于|没有|犯不着|没必要|没那么(?:急|严重))"
                       r"(?:不用|不要|不至于|没有)?(?:了|啊|呀|吧|的事)?(?=$|[\s,.!~;，。！])")
# A person named and not wanted, though no rule fires on the bare word (用不着人工, 客服就不用了 你告诉我):
# the classifier should not read a request either. Only a plain "no need" (没有人工吗 asks for one).
_NO_PERSON = re.compile(r"(?:不用|不需要|用不着|不必|无需|不麻烦|不劳烦)(?:找|转|叫|麻烦)?(?:人工|客服|真人)"
                        r"|(?:人工|客服|真人)(?:就|也|先)?(?:不用|不需要|用不着|不必|免)了?(?=$|[\s,.!?~;，。！？啦哈啊吧])")


# Only what the shopper would do can be taken back: asking for a person, complaining, reporting,
# a bad review, a problem they have. "别忽悠我" / "不要敷衍" say what the shop does: complaints still.
_OWN_COMPLAINT = re.compile(r"投诉|举报|差评|一星|12315|12345|315|消协|消费者协会|工商局|市场监管|维权|曝光"
                            r"|起诉|律师|报警|法院|介入|拉黑|再也不")


# A clause ended between the negation and the trigger (机器人别说了 人工客服呢, 不需要你 叫店长): the negation is
# of something else.
_CLAUSE_ENDED = re.compile(r"(?:了|你|你们)[\s,，]+$")


def _taken_back(text: str, found: re.Match[str], reason: Reason) -> bool:
    if reason is Reason.COMPLAINT and not _OWN_COMPLAINT.search(found.group(0)):
        return False
    before = text[: found.start()]
    return bool(_NEGATION.search(before) and not _CLAUSE_ENDED.search(before)
                or _CONCEDED.match(text, found.end()))


def read(text: str) -> tuple[tuple[Reason, str] | None, frozenset[Reason]]:
    """The first rule that matches normalised text (with the matched words), and the reasons whose
    trigger words the shopper took back (不用转人工: the classifier should not read a request either)."""
    taken: set[Reason] = {Reason.REQUESTED} if _NO_PERSON.search(text) else set()
    for pattern, reason in _RULES:
        for found in pattern.finditer(text):
            if reason is Reason.PROBLEM and (_hypothetical(text, found) or _asks_before_buying(text, found)):
                continue
            if _taken_back(text, found, reason):
                taken.add(reason)
                continue
            return (reason, found.group(0)), frozenset(taken)
    edit = _order_edit(text)
    if edit is not None:
        if not _NEGATION.search(text[: edit.start()]):
            return (Reason.OUT_OF_SCOPE, edit.group(0)), frozenset(taken)
        taken.add(Reason.OUT_OF_SCOPE)
    return None, frozenset(taken)


def match(text: str) -> tuple[Reason, str] | None:
    """The first rule that matches normalised text, with the matched words, or None."""
    return read(text)[0]
