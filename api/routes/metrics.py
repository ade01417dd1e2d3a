"""GET /metrics: Prometheus' text format (api/metrics.py), behind KEFU_METRICS_TOKEN when it is set."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import Bearer, bearer_name, get_app_settings
from api.metrics import exposition
from api.schemas import ErrorOut

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, responses={
    200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus' text exposition format"},
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}})
def metrics(request: Request, creds: Bearer) -> Response:
    """Requests, messages, handoffs, answers, the bot's reading time and confidence, the queue and the
    model in service, added up over every worker."""
    token = get_app_settings(request).metrics_token
    if token:
        bearer_name(creds, {token: "prometheus"}, "metrics")
    return Response(exposition(request.app.state), media_type=CONTENT_TYPE_LATEST)
