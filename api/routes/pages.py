"""Static pages: the demo shop with the chat widget at `/`, the agent console at `/agent`."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/")
def demo_shop() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/agent")
def agent_console() -> FileResponse:
    return FileResponse(STATIC / "agent.html")
