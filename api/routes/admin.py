"""The operator's side: which model serves, reload a new one, roll back. Needs the admin token."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from api.deps import Bearer, bearer_name, get_app_settings
from api.schemas import ErrorOut

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses={
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 409: {"model": ErrorOut}})


def current_manager(request: Request,
                    creds: Bearer) -> str:
    """The manager's name for a valid bearer token (KEFU_ADMIN_TOKEN is "admin"); 401 without one,
    403 for a wrong one."""
    return bearer_name(creds, get_app_settings(request).managers(), "admin")


require_admin = current_manager
ManagerDep = Annotated[str, Depends(current_manager)]


class ReloadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: StrictStr | None = Field(None, max_length=100, description="a folder in models/; default CURRENT")


@router.get("/model", dependencies=[Depends(require_admin)])
def model(request: Request) -> Any:
    """The model in service: version, embedder, the thresholds in service (training's, with the
    operator's overrides) beside those training chose, metrics."""
    bot = request.app.state.bot()
    m = bot.model
    return {"version": m.version, "embedder": m.metadata.get("embedder"), "thresholds": asdict(bot.thresholds),
            "trained_thresholds": m.metadata.get("thresholds"), "previous": m.metadata.get("previous"),
            "metrics": m.metadata.get("metrics", {}).get("heldout")}


@router.post("/model/reload", dependencies=[Depends(require_admin)])
def reload(request: Request, body: ReloadIn | None = None) -> Any:
    """Load and verify a model, then swap it in atomically; on failure the old one keeps serving. A
    version named is published: made current on disk, and served by every process of the shop."""
    version = request.app.state.bot.reload(body.version if body else None, publish=bool(body and body.version))
    return {"version": version}


@router.post("/model/rollback", dependencies=[Depends(require_admin)])
def rollback(request: Request) -> Any:
    """Serve the previous model again (and make it current on disk)."""
    return {"version": request.app.state.bot.rollback()}


class TryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: StrictStr = Field(min_length=1, max_length=1000, description="a shopper's message to try")
    version: StrictStr | None = Field(None, max_length=100, pattern=r"^[\w.-]+$",
                                      description="a model folder (default: the model in service)")


@router.post("/try", dependencies=[Depends(require_admin)])
def try_message(request: Request, body: TryIn) -> Any:
    """Hit testing: what a model makes of a message on its own (route, entry, confidence, the top
    three entries with their titles, the answer), by the model in service or another trained one."""
    holder = request.app.state.bot
    bot = holder.bot if body.version is None else holder.candidate(body.version)
    out = bot.predict(body.message)
    titles = {i: e.title or i for i, e in bot.kb.entries.items()}
    return {"version": bot.model.version, "route": out.route, "action": out.action, "intent": out.intent,
            "title": titles.get(str(out.intent)), "confidence": round(out.confidence, 4), "reply": out.reply,
            "reason": out.reason, "suggestions": out.suggestions,
            "top": [{**p.as_dict(), "title": titles.get(p.intent, p.intent)} for p in out.ranking[:3]]}
