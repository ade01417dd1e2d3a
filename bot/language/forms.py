"""Sentence forms of a normalised message: whether it asks anything, and whether it closes a topic.

A shopper ends a topic the way one ends it with a person: an acknowledgement, then what they will do
(好 那我拍两个, 算了 先不买了, 好的 我重新拍个白的, 行 等你们消息), or what they will do, then thanks
(那就不买了 谢谢). Such a message asks nothing, so no
FAQ entry is its answer, yet its words (拍, 买, 白的) pull the classifier towards the entries they
usually come with. The policy reads the form: an unsure reading of a closing is answered as one.

The question forms are Chinese grammar, not sentences: a question mark, the particles 吗/么/嘛 (and
呢, 不, 没 at the end), a question word (什么, 怎么, 多少, 几, 哪, 谁, 多久...), or an A-not-A
(有没有, 能不能, 发不发).
"""

from __future__ import annotations

import re

_QUESTION = re.compile(
    r"[?？]|[吗嘛]|么(?!样)"
    r"|(?:呢|不|没|否)[\s!.~…]*$"
    r"|什么|啥|咋|怎|如何|多少|几|哪|谁|为何|多久|多大|多长|多重|多高|多宽|多远"
    r"|([\u4e00-\u9fff])[不没]\1"
    r"|(?:能|可以|会|是|有|对|行|要)[^，,。!]*吧[\s!.~…]*$"
)
# An acknowledgement that opens a message: the shopper takes the answer, or lets the matter go.
_ACK = re.compile(r"^(?:好|好的|好吧|好滴|好嘞|好哒|行|行吧|那行|嗯|嗯嗯|哦|噢|喔|ok|okay|知道了|明白了?|了解了?"
                  r"|懂了|收到|算了|那算了|那好吧|那好)(?=$|[\s,，。!~…]|[我那先等就再])")
# ...or thanks that end it (那就不买了 谢谢, 好的 我再看看 辛苦啦).
_THANKS = re.compile(r"(?:谢谢|谢啦|谢了|多谢|感谢|辛苦)(?:你|您|亲|啦|了|哈|哦|你们|您们)*[\s!.~…]*$")
# A request asks without a question's form (退货地址发我下 谢谢, 好的 麻烦帮我备注下): no closing.
_REQUEST = re.compile(r"发我|告诉我|帮我|帮忙|麻烦|(?<![申邀])请|给我|发一?下|查一?下|看一?下")


def is_question(norm: str) -> bool:
    """Whether a normalised message asks something (by its form)."""
    return _QUESTION.search(norm) is not None


def closing(norm: str) -> bool:
    """Whether a normalised message acknowledges and closes rather than asks (好 那我拍两个)."""
    return ((_ACK.match(norm) is not None or _THANKS.search(norm) is not None)
            and not is_question(norm) and _REQUEST.search(norm) is None)
