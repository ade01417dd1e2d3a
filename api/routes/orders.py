"""The shop's checkout reports the orders chats led to (询单转化率 in the figures)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from api.deps import Bearer, ConversationsDep, bearer_name, get_app_settings
from api.schemas import ErrorOut, OrderIn, OrderOut
from bot.figures.outcomes import record_order
from bot.service.schema import iso

router = APIRouter(prefix="/v1/orders", tags=["orders"], responses={
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut},
    422: {"model": ErrorOut}})


def checkout(request: Request, creds: Bearer) -> None:
    """The shop's checkout, by its token (KEFU_ORDER_TOKEN; no token set: nobody)."""
    token = get_app_settings(request).order_token
    bearer_name(creds, {token: "checkout"} if token else {}, "order")


@router.post("", response_model=OrderOut, status_code=201, dependencies=[Depends(checkout)])
def report_order(body: OrderIn, conv: ConversationsDep, response: Response) -> Any:
    """An order placed by the shopper of a chat session: 201 the first time, 200 (and nothing
    changes) when the same order is reported again; the same order id with another session or
    amount is 409."""
    order, new = record_order(conv.store, body.session_id, body.order_id, body.amount, body.at)
    if not new:
        response.status_code = 200
    return {"order_id": order.order_id, "session_id": order.session_id,
            "amount": Decimal(order.amount_cents).scaleb(-2), "at": iso(order.at), "new": new}
