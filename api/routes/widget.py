"""What the chat widget and the agent console read at start: the shop's greeting and quick replies,
and the catalogue's ids with titles for the agents' label select. Everything comes from the loaded
knowledge base (shop.yml and data/faq), so a shop rewords it without touching code."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.deps import AgentDep
from api.schemas import CatalogueOut, ErrorOut, WidgetOut
from bot.answers import reply_text

router = APIRouter(prefix="/v1", tags=["widget"])

# The FAQ families the widget offers as quick replies (shop.yml `widget.quick_replies` overrides).
DEFAULT_QUICK_REPLIES = [
    {"family": "size", "label": "尺码", "message": "尺码怎么选"},
    {"family": "shipping", "label": "发货", "message": "什么时候发货"},
    {"family": "payment", "label": "付款", "message": "可以用什么方式付款"},
    {"family": "returns", "label": "退换货", "message": "怎么退换货"},
]
HANDOFF_MESSAGE = "转人工"


def _greeting(kb: Any) -> str:
    text = reply_text(kb, "greeting")
    if text:
        return text
    if "smalltalk.greeting" in kb.entries:
        return str(kb.answer("smalltalk.greeting"))
    name = kb.shop.get("name", "本店")
    assistant = kb.shop.get("assistant_name", "小助手")
    return f"亲，您好～欢迎光临{name}！我是智能客服{assistant}，尺码、发货、付款、退换货的问题都可以问我哦～"


@router.get("/widget", response_model=WidgetOut)
def widget(request: Request) -> Any:
    """Public: the shop's name, the assistant's name, the greeting and the quick replies."""
    kb = request.app.state.bot().kb
    configured = kb.shop.get("widget.quick_replies")
    quick = configured if isinstance(configured, list) and configured else DEFAULT_QUICK_REPLIES
    families = {e.family for e in kb.entries.values()}
    quick = [q for q in quick if not q.get("family") or q["family"] in families]
    return {"shop_name": kb.shop.get("name", ""), "assistant_name": kb.shop.get("assistant_name", ""),
            "greeting": _greeting(kb), "quick_replies": quick, "handoff_message": HANDOFF_MESSAGE}


@router.get("/catalogue", response_model=CatalogueOut, responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}})
def catalogue(request: Request, agent: AgentDep) -> Any:
    """For agents: every catalogue id with its title (the labels a handoff can be resolved with)."""
    kb = request.app.state.bot().kb
    data = [{"id": i, "title": e.title or i, "family": e.family} for i, e in sorted(kb.entries.items())]
    return {"data": data, "count": len(data)}
