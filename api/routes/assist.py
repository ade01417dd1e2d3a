"""The agents' help: the bot's answers as drafts, the shop's 快捷短语, transfers, and who the agents are."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.deps import AgentDep, ConversationsDep, get_app_settings
from api.routes.admin import ManagerDep
from api.routes.handoffs import HandoffId
from api.schemas import (
    AgentsOut,
    DraftsOut,
    ErrorOut,
    PhrasesFileOut,
    PhrasesIn,
    PhrasesOut,
    TransferIn,
    TransferOut,
)
from bot.assist import drafts as drafts_module
from bot.assist import phrases as phrases_module
from bot.assist.phrases import Phrase, PhraseBook
from bot.assist.transfer import transfer as transfer_chat

router = APIRouter(prefix="/v1", tags=["agents"], responses={
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}})


def phrase_book(request: Request) -> PhraseBook:
    """The shop's phrases, read at start and again whenever the file changes."""
    return request.app.state.phrases  # type: ignore[no-any-return]


def _shown(request: Request, agent: str) -> str:
    return get_app_settings(request).display_names().get(agent, agent)


@router.get("/handoffs/{handoff_id}/drafts", response_model=DraftsOut)
def drafts(handoff_id: HandoffId, conv: ConversationsDep, agent: AgentDep) -> Any:
    """The bot's likeliest answers to the shopper's latest message, filled as it would send them: for the
    agent to pick, edit and send (the bot sends none of them itself)."""
    return drafts_module.drafts(conv.bot, conv.store, handoff_id)


@router.get("/phrases", response_model=PhrasesOut)
def phrases(request: Request, conv: ConversationsDep, agent: AgentDep,
            q: Annotated[str | None, Query(min_length=1, max_length=50,
                                           description="a keyword in the title, the keywords or the text")] = None,
            ) -> Any:
    """快捷短语: the shop's canned replies (KEFU_PHRASES_FILE), filled with shop.yml's facts and `{agent}`,
    the agent's name as shoppers see it."""
    data = phrase_book(request).search(conv.bot.kb.shop, q, agent=_shown(request, agent))
    return {"data": data, "count": len(data)}


@router.post("/handoffs/{handoff_id}/transfer", response_model=TransferOut)
def transfer(handoff_id: HandoffId, body: TransferIn, request: Request, conv: ConversationsDep,
             agent: AgentDep) -> Any:
    """Give the chat to a colleague with a note only agents see (409 if it is someone else's or closed)."""
    names = get_app_settings(request).agents().values()
    return transfer_chat(conv, handoff_id, agent, body.to, (body.note or "").strip(), names)


@router.get("/agents", response_model=AgentsOut)
def agents(request: Request, conv: ConversationsDep, agent: AgentDep) -> Any:
    """The shop's agents (for a transfer) with the names shoppers see, their status and open chats; `me`:
    the caller."""
    shown = get_app_settings(request).display_names()
    names = sorted(set(get_app_settings(request).agents().values()))
    desk = {p.agent: {"status": p.status, "chats": p.chats} for p in (conv.desk.presence(names) if conv.desk else [])}
    return {"me": agent, "data": [{"name": n, "display_name": shown.get(n, n), **desk.get(n, {})} for n in names]}


def _templates(book: PhraseBook) -> dict[str, Any]:
    version = phrases_module.version_of(book.path)
    data = [{"title": p.title, "keywords": list(p.keywords), "text": p.text} for p in book.items()]
    return {"data": data, "version": version}


@router.get("/admin/phrases", response_model=PhrasesFileOut, tags=["admin"])
def phrase_templates(request: Request, _: ManagerDep) -> Any:
    """For the shop's manager: 快捷短语 as written (placeholders unfilled) and the file's version."""
    return _templates(phrase_book(request))


@router.put("/admin/phrases", response_model=PhrasesFileOut, tags=["admin"])
def save_phrases(request: Request, _: ManagerDep, body: PhrasesIn, conv: ConversationsDep) -> Any:
    """Replace 快捷短语 with these, over the version read (409 if someone saved in between; 422 for a
    placeholder shop.yml does not have); agents see them at their next search."""
    book = phrase_book(request)
    items = [Phrase(p.title, p.text, tuple(k for k in p.keywords if k)) for p in body.phrases]
    phrases_module.save(book.path, items, body.version, conv.bot.kb.shop)
    return _templates(book)
