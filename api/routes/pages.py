"""Static pages: the demo shop with the chat widget at `/`, the agent console at `/agent`, the manager's
console at `/admin`, the API docs at `/docs`."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent.parent / "static"
# Swagger UI's script and style, from the fastapi-offline package: served by kefu, never a CDN.
SWAGGER_UI = Path(fastapi_offline.__file__).resolve().parent / "static"

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/")
def demo_shop() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/agent")
def agent_console() -> FileResponse:
    return FileResponse(STATIC / "agent.html")


@router.get("/admin")
def manager_console() -> FileResponse:
    """The manager's console: review queue, knowledge base, hit testing, training and publishing.
    The page is public; every call it makes needs a manager's token."""
    return FileResponse(STATIC / "admin.html")


@router.get("/docs")
def api_docs() -> FileResponse:
    """Swagger UI for the OpenAPI schema, its scripts all from this server (the CSP allows no other)."""
    return FileResponse(STATIC / "docs.html")
