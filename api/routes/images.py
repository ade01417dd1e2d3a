"""Pictures in the chat: a shopper sends one to the person who has (or will have) the chat; the shopper
(their session id) and the agents (their token) see it. What is kept and served is a re-encoded image
(bot.media), served as that image's type and nothing a browser would run."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from api.deps import AgentDep, ConversationsDep, get_app_settings
from api.routes.chat import SessionId
from api.schemas import ErrorOut, MessageOut
from bot.media.uploads import picture_of, send_picture
from bot.service.schema import Picture

PictureId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# Served pictures: the type that was checked, never sniffed, shown in place under a name of ours; a
# policy that runs nothing, should the browser open one as a document; private to whoever asked.
SERVED = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=86400",
          "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
          "Cross-Origin-Resource-Policy": "cross-origin"}  # the widget shows it on the shop's own pages
# The body is the picture's bytes (whatever Content-Type says: the content decides).
UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}

router = APIRouter(tags=["chat"], responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut},
                                              413: {"model": ErrorOut}, 422: {"model": ErrorOut},
                                              429: {"model": ErrorOut}})


@router.post("/v1/chat/{session_id}/images", response_model=MessageOut, status_code=201, openapi_extra=UPLOAD_BODY)
async def upload(session_id: SessionId, request: Request, conv: ConversationsDep) -> Any:
    """A picture (JPEG, PNG, GIF or WebP, at most KEFU_MAX_IMAGE_BYTES) for the person who has the chat:
    the shopper's message that shows it. 409 while no person has or awaits the chat; 413 too large; 422
    not a picture, or one that carries something else (a polyglot)."""
    data = await request.body()  # (the session's rate limit is the middleware's, by the path)
    limit = get_app_settings(request).max_image_bytes
    return await asyncio.to_thread(send_picture, conv, session_id, data, limit)


def _served(row: Picture) -> Response:
    ext = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}.get(row.content_type, "img")
    headers = {**SERVED, "Content-Disposition": f'inline; filename="kefu-image-{row.id}.{ext}"'}
    return Response(row.data, media_type=row.content_type, headers=headers)


IMAGE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}, "description": "the picture"}}


@router.get("/v1/chat/{session_id}/images/{picture_id}", response_class=Response, responses=IMAGE)
def shopper_image(session_id: SessionId, picture_id: PictureId, conv: ConversationsDep) -> Response:
    """A picture of this session (another session's is 404)."""
    return _served(picture_of(conv, picture_id, session_id))


@router.get("/v1/images/{picture_id}", response_class=Response, tags=["agents"],
            responses={**IMAGE, 401: {"model": ErrorOut}, 403: {"model": ErrorOut}})
def agent_image(picture_id: PictureId, conv: ConversationsDep, agent: AgentDep) -> Response:
    """For agents (bearer token): any shopper's picture, as the transcript names it."""
    return _served(picture_of(conv, picture_id))
