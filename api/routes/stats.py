"""The shop's figures for the manager (bot/service/analytics.py defines each one)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import ConversationsDep
from api.routes.admin import ManagerDep
from api.schemas import ErrorOut
from bot.service import analytics

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses={
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}})
Day = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD, in the shop's time zone")]


@router.get("/stats")
def stats(manager: ManagerDep, conv: ConversationsDep, start: Annotated[Day, Query(alias="from")] = None,
          end: Annotated[Day, Query(alias="to")] = None) -> Any:
    """Conversations, containment, handoffs by reason, unanswered turns, feedback, ratings, entries,
    waits and agents' replies over whole days (default: the last 7 days, today included)."""
    tz = conv.bot.kb.shop.get("timezone")
    return analytics.stats(conv.store, analytics.period(start, end, tz))
