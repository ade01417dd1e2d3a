"""Sentence forms of a normalised message: whether it asks anything, whether it closes a topic, and
whether it is a yes/no question of its own.

A shopper ends a topic the way one ends it with a person: an acknowledgement, then what they will do
(好 那我拍两个, 算了 先不买了, 好的 我重新拍个白的, 行 等你们消息), what they will do alone (那我拍两个,
我先看看哈), or thanks (谢谢小哥哥 回复好快, 那就不买了 谢谢). Such a message asks nothing, so no
FAQ entry is its answer, yet its words (拍, 买, 白的) pull the classifier towards the entries they
usually come with. The policy reads the form: an unsure reading of a closing is answered as one, and
after the chat's first question one no rule fired on is answered as one whatever its words weigh. So
an acknowledgement that turns (好的 但是盒子是瘪的), hurries or complains (好吧 都一周了还没发) or wants
something done (ok 那叫个人工过来, 好的 先别发货) is no closing: it is left to the rules and the classifier.

The question forms are Chinese grammar, not sentences: a question mark, the particles 吗/么/嘛 (and
呢, 不, 没 at the end), a question word (什么, 怎么, 多少, 几, 哪, 谁, 多久...), or an A-not-A
(有没有, 能不能, 发不发); not a question word that means "any" (晚几天也没关系, 哪天发都行).
"""

from __future__ import annotations

import re

_QUESTION = re.compile(
    r"[?？]|[吗嘛]|么(?!样)"
    r"|(?<!好的)(?<!是的)(?<!嗯)(?:呢|不|没|否)[\s!.~…]*$"  # not 好的呢, 嗯呢: acknowledgements
    r"|什么|啥|咋|怎|如何|多少|几|哪|谁|为何|多久|多大|多长|多重|多高|多宽|多远"
    r"|(?<![不没])([\u4e00-\u9fff])[不没]\1"  # not 不急不急 (said twice)
    r"|(?:(?:能|可以|会|是|有|对|要)[^，,。!]*|行[^，,。!]+)吧[\s!.~…]*$"
)
# Thanks, at either end of a message.
_THANKS_WORDS = r"谢谢|谢啦|谢了|多谢|感谢"
# Particles a shopper hangs on an acknowledgement or thanks (好的哈, 知道啦, 谢谢亲).
_PARTICLES = r"(?:啦|哈|呀|哒|滴|嘞|噢|哦|喔|呢|呐|亲|你|您|你们|您们|哈哈|de)*"
# An acknowledgement that opens a message (said once or twice: 嗯嗯 收到, 好的 好的, 不急不急): the shopper takes the
# answer, lets the matter go, or says goodbye. Words that also start a request (可以再便宜点, 没事先发货吧)
# count only as a whole word...
_OPENER = (r"(?:好|好的|好吧|好滴|好嘞|好哒|好得|好de|行|行吧|那行|嗯+|嗯+呐|哦+|噢+|喔|ok|okay|okok"
           r"|知道了?|晓得了?|明白了?|了解了?|懂了?|哦了|收到|get|算了|那算了|那好吧|那好|得嘞|妥了?|原来如此"
           r"|(?:可以(?:可以)?|没问题|没事(?:没事)?|没关系|不急(?:不急)?|不着急|理解)(?=$|[\s,，。!~…])"
           r"|拜拜|再见|88|886)" + _PARTICLES)
_ACK = re.compile(rf"^{_OPENER}(?:[\s,，]*{_OPENER})*(?=$|[\s,，。!~…]|[我那先等就再])")
# ...or thanks, whatever follows them (谢谢客服小姐姐, 谢谢你耐心解答哈) unless it asks or turns.
_THANKS_FIRST = re.compile(rf"^(?:{_THANKS_WORDS}|感恩|蟹蟹|xiexie|3q|thx|thanks?|thank you)")
# ...or what the shopper will now do about the goods, said first (那我拍两个, 我先看看哈, 那我选大号的): buy,
# think it over, wait, choose. Not an after-sales step (那我退了吧 asks how, 我要退货 is a request).
_WILL = re.compile(r"^(?:那|那我|那就|我|我先|我再|我还是|那我还是|那我先|那我再|那我就)(?=[^退换申投错想]*$)"
                   r"(?:.{0,12}(?:拍|买|下单|入手|看看|考虑|想想|商量|研究|收藏|加购|纠结)(?![的过])"
                   r"|(?<=那)(?:我|就)?(?:要|选|等).{0,10}吧?$)")
# ...or thanks, understanding, a farewell or letting it go that end it (那就不买了 谢谢, 原来是这样 明白了, 没货就算了).
_THANKS = re.compile(rf"(?:{_THANKS_WORDS}|辛苦|明白了|懂了|了解了|知道了|晓得了|算了|拜拜|再见)"
                     + _PARTICLES + r"(?:了|吧)?[\s!.~…]*$")
# A request asks without a question's form (退货地址发我下 谢谢, 好的 麻烦帮我备注下): no closing.
_REQUEST = re.compile(r"发我|告诉我|帮我|帮忙|麻烦(?!了|你了|您了)|(?<![申邀])请|给我|发一?下|查一?下|看一?下"
                      # ...nor one for a person, or to do something to the order (叫个人工过来, 先别发货, 改成下周送)
                      r"|人工|(?:叫|喊|让|找)(?:个|一个)?(?:人|客服)|取消|改(?:成|为|到|一?下)|把.{0,10}改|记得|别(?![的人家])|同意"
                      r"|联系(?:一?下|快递|物流)|安排|一起发|重新(?:发|派|寄)|尽量|一定要|务必|千万")
# What turns an acknowledgement into something else (好的 但是我收到的是坏的, 好吧 都五天了还没发货, 行吧 太慢了):
# a contrast, impatience, a complaint. Such a message is for the classifier and the rules, never a closing.
_TURN = re.compile(r"但|可是|不过|只是|然而|都.{0,6}了|还没|还是没|没人|太慢|太坑|太差|快点|(?<!不)(?<!不着)急"
                   r"|[天周月]了|很久|好久|半天|第[二三四五六七八九十几2-9]次|每次|扣了?(?:两|2)次|坑|气人|心塞|无语|怎么回事|说好")


# A question word before 都/也 and a word of assent asks nothing: it means "any" (晚几天也没关系, 哪天发都行,
# 多少钱都可以). Such a clause is set aside before the question forms are looked for (哪天都行吗 still asks).
_ANY = re.compile(r"[^\s,，。!~…]*(?:都|也)(?:没关系|没事|不要紧|无所谓|行|可以|ok)" + _PARTICLES
                  + r"(?:了|的)?(?=$|[\s,，。!~…])")


def is_question(norm: str) -> bool:
    """Whether a normalised message asks something (by its form)."""
    return _QUESTION.search(_ANY.sub("", norm)) is not None


def closing(norm: str) -> bool:
    """Whether a normalised message acknowledges and closes rather than asks (好 那我拍两个)."""
    return ((_ACK.match(norm) is not None or _THANKS_FIRST.match(norm) is not None or _WILL.match(norm) is not None
             or _THANKS.search(norm) is not None)
            and not is_question(norm) and _REQUEST.search(norm) is None and _TURN.search(norm) is None)


# A yes/no question that states what it asks (要打孔吗, 正品吗, 纯棉的不): it does not continue the question
# before it the way a fragment does (贵多少, 39呢, 在哪申请). Not one that opens with 那 (那XL的有吗), nor one
# that leans on the matter at hand with 还, 也 or 帮 (还能退吗, 也包邮吗, 能帮我催一下吗).
_YES_NO = re.compile(r"(?:吗|嘛|(?<![什怎那这多])么|(?<![不没])[不没])[\s?!.~…]*$")
_LEANS = re.compile(r"^那|[还也帮]")


def own_question(norm: str) -> bool:
    """Whether a normalised message is a yes/no question of its own (要打孔吗), not a follow-up's fragment."""
    return _YES_NO.search(norm) is not None and _LEANS.search(norm) is None
