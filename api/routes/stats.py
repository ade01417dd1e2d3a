"""The shop's figures for the manager (bot/figures/analytics.py defines each one)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import ConversationsDep
from api.routes.admin import ManagerDep
from api.schemas import ErrorOut
from bot.figures import analytics

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses={
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}})
DAY = r"^\d{4}-\d{2}-\d{2}$"


@router.get("/stats")
def stats(manager: ManagerDep, conv: ConversationsDep,
          start: Annotated[str | None, Query(alias="from", pattern=DAY, description="first day, YYYY-MM-DD, in "
                                             "the shop's time zone (default: six days before `to`)")] = None,
          end: Annotated[str | None, Query(alias="to", pattern=DAY, description="last day (default: today)")] = None,
          ) -> Any:
    """Conversations, containment, handoffs by reason, unanswered turns, feedback, ratings, entries,
    waits, agents' replies, orders and conversion over whole days (bot/figures/analytics.py)."""
    tz = conv.bot.kb.shop.get("timezone")
    return analytics.stats(conv.store, analytics.period(start, end, tz))
