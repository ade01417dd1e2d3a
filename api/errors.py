"""One mapping from the core's error tree (and the framework's) to JSON HTTP errors."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.dialogue.voice import say
from bot.errors import (
    ConflictError,
    ImageRefusedError,
    IncompatibleModelError,
    InvalidInputError,
    KefuError,
    KnowledgeWriteError,
    ModelNotFoundError,
    NotFoundError,
    SessionNotFoundError,
    StoreUnavailableError,
)

log = logging.getLogger(__name__)

_STATUS: tuple[tuple[type[KefuError], int, str], ...] = (
    (InvalidInputError, 422, "invalid_input"),
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (StoreUnavailableError, 503, "unavailable"),
    (KnowledgeWriteError, 503, "unwritable"),
    (ModelNotFoundError, 404, "no_model"),
    (IncompatibleModelError, 409, "incompatible_model"),
)
_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
               409: "conflict", 413: "too_large", 415: "unsupported_media_type", 429: "rate_limited"}


def error_response(status: int, code: str, message: str, detail: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "message": message}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(errors: list[dict[str, Any]]) -> str:
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return "request body is not valid JSON"
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid request"))


def install(app: FastAPI) -> None:
    @app.exception_handler(KefuError)
    async def _kefu(request: Request, exc: KefuError) -> JSONResponse:
        if isinstance(exc, SessionNotFoundError):  # the shopper reads this one: in the shop's voice
            return error_response(404, "not_found", say(request.app.state.bot().kb.shop, "no_session"))
        if isinstance(exc, ImageRefusedError):  # the shopper reads it too: the shop's voice, the reason in English
            status = {"too_large": 413, "no_person": 409}.get(exc.kind, 422)
            mb = request.app.state.settings.max_image_bytes / 1_048_576
            message = say(request.app.state.bot().kb.shop, f"image_{exc.kind}", max_mb=f"{mb:g}")
            return error_response(status, f"image_{exc.kind}", message, str(exc))
        for cls, status, code in _STATUS:
            if isinstance(exc, cls):
                return error_response(status, code, str(exc))
        return error_response(400, "bad_request", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in exc.errors()]
        return error_response(422, "invalid_request", _validation_message(errors), errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, _HTTP_CODES.get(exc.status_code, "error"), str(exc.detail),
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "internal", "internal error; it has been logged")
