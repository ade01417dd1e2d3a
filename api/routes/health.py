"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(tags=["health"])


@router.get("/livez")
def livez() -> Any:
    """Liveness: a constant body (also the trivial endpoint the benchmark compares chat with)."""
    return {"status": "ok"}


@router.get("/healthz")
def healthz(request: Request) -> Any:
    """Ready when the model is loaded; reports the model version and the database."""
    state = request.app.state
    db_ok = state.conversations.store.ping()
    return {"status": "ok" if db_ok else "degraded", "model": state.bot().model.version, "database": db_ok}
