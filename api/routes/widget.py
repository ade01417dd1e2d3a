"""What the chat widget and the agent console read at start: the shop's greeting, quick replies and
the widget's labels, and the catalogue's ids with titles for the agents' label select. Everything
comes from the loaded knowledge base and the shop's voice (shop.yml over bot/dialogue/voice.yml),
so a shop rewords it without touching code."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.deps import AgentDep
from api.schemas import CatalogueOut, ErrorOut, WidgetOut
from bot.dialogue import voice

router = APIRouter(prefix="/v1", tags=["widget"])


def _greeting(kb: Any) -> str:
    """The shop's own greeting, else its small-talk entry's answer, else kefu's default."""
    if not voice.is_own(kb.shop, "replies.greeting") and "smalltalk.greeting" in kb.entries:
        return str(kb.answer("smalltalk.greeting"))
    return voice.say(kb.shop, "greeting")


@router.get("/widget", response_model=WidgetOut)
def widget(request: Request) -> Any:
    """Public: the shop's name, the assistant's name, the greeting, the quick replies and the labels."""
    kb = request.app.state.bot().kb
    shown = voice.widget(kb.shop)
    families = {e.family for e in kb.entries.values()}
    quick = [q for q in shown["quick_replies"] if not q.get("family") or q["family"] in families]
    return {"shop_name": kb.shop.get("name", ""), "assistant_name": kb.shop.get("assistant_name", ""),
            "greeting": _greeting(kb), "quick_replies": quick, "handoff_message": shown["handoff_message"],
            "texts": shown["texts"], "image_max_bytes": request.app.state.settings.max_image_bytes}


@router.get("/catalogue", response_model=CatalogueOut, responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}})
def catalogue(request: Request, agent: AgentDep) -> Any:
    """For agents: every catalogue id with its title (the labels a handoff can be resolved with)."""
    kb = request.app.state.bot().kb
    data = [{"id": i, "title": e.title or i, "family": e.family} for i, e in sorted(kb.entries.items())]
    return {"data": data, "count": len(data)}
