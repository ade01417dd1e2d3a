"""The knowledge base editor over HTTP: entries, the shop's facts, the audit log. Manager token.

Translation only: the editor (bot.manage.editor) checks, writes and audits; after a write the bot in
service reloads the data folder with the model it has, so a new answer or title is served at once.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from api.deps import get_app_settings, get_conversations
from api.routes.admin import ManagerDep
from api.schemas import ErrorOut
from bot.errors import KefuError
from bot.manage.audit import MAX_PAGE
from bot.manage.editor import Edit, KnowledgeEditor
from bot.manage.entries import INTENT_ID, MAX_ANSWER_CHARS, MAX_EXAMPLES, MAX_ID_CHARS, MAX_TITLE_CHARS

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/admin/kb", tags=["knowledge base"], responses={
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut},
    422: {"model": ErrorOut}})

Intent = Annotated[str, Path(max_length=MAX_ID_CHARS, description="an entry's id, family.name")]
Version = Annotated[StrictStr, Field(min_length=1, max_length=64, description="from the GET you edited")]
Examples = Annotated[list[StrictStr], Field(max_length=MAX_EXAMPLES, description="the whole list, one question each")]
ShopValue = StrictBool | StrictInt | StrictFloat | StrictStr | list[StrictStr]


def get_editor(request: Request) -> KnowledgeEditor:
    """An editor over the app's data folder and store (cheap: it keeps no state between requests)."""
    return KnowledgeEditor(get_app_settings(request).data_dir, get_conversations(request).store)


EditorDep = Annotated[KnowledgeEditor, Depends(get_editor)]


def serve_knowledge(request: Request) -> bool:
    """Reload the bot in service from the data folder, with the model it serves: answers and titles
    come from the knowledge base, so a saved one is served at once. False (logged) when the reload
    failed; the change is saved all the same and is served from the next reload."""
    holder = request.app.state.bot
    try:
        holder.reload(holder.bot.model.version)
    except KefuError as exc:
        log.error("knowledge base saved, but the bot could not reload it: %s", exc)
        return False
    return True


# A new entry: id, title, answer template and at least one example.
class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    intent: StrictStr = Field(max_length=MAX_ID_CHARS, pattern=INTENT_ID, description="family.name, lower case")
    title: StrictStr = Field(max_length=MAX_TITLE_CHARS)
    answer: StrictStr = Field(max_length=MAX_ANSWER_CHARS, description="placeholders from shop.yml: {shipping.fee}")
    examples: Examples


# A change to an entry, made to the version read.
class EntryUpdateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: StrictStr = Field(max_length=MAX_TITLE_CHARS)
    answer: StrictStr = Field(max_length=MAX_ANSWER_CHARS)
    examples: Examples
    version: Version


# New values of the shop's facts by dotted key, made to the version read.
class ShopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    values: dict[Annotated[str, Field(max_length=200)], ShopValue] = Field(min_length=1, max_length=200)
    version: Version


class EntrySummaryOut(BaseModel):
    intent: str
    title: str
    family: str
    examples: int = Field(description="how many")
    answer: str = Field(description="the template's first lines")
    match: str | None = Field(None, description="the example a search found the entry by")


class EntriesOut(BaseModel):
    entries: list[EntrySummaryOut]


class ExampleOut(BaseModel):
    text: str
    file: str


class FollowUpOut(BaseModel):
    after: list[str]
    examples: list[str]


class EntryOut(BaseModel):
    intent: str
    title: str
    family: str
    answer: str
    preview: str = Field(description="the answer filled with the shop's facts")
    version: str = Field(description="send it back with a change; 409 when someone saved in between")
    home: str = Field(description="the file that holds the answer; new examples go there")
    examples: list[ExampleOut]
    follow_ups: list[FollowUpOut] = Field(description="read-only here")


# A saved entry: the entry now, and what the change needs.
class EditOut(EntryOut):
    retrain: bool = Field(description="examples changed: train a new model for the bot to learn them")
    added: list[str]
    removed: list[str]
    moved: dict[str, str] = Field(description="examples taken from another entry, with that entry")
    live: bool = Field(description="the bot in service reloaded the knowledge base (answers and titles)")


class ShopOut(BaseModel):
    values: dict[str, Any] = Field(description="shop.yml as read")
    fields: dict[str, Any] = Field(description="the editable values by dotted key")
    version: str
    live: bool | None = None


class ChangeOut(BaseModel):
    id: int
    at: str
    who: str
    target: str = Field(description="an entry's id, or shop")
    action: str = Field(description="create | update | shop")
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class ChangesOut(BaseModel):
    changes: list[ChangeOut]


def _edit_out(edit: Edit, live: bool) -> dict[str, Any]:
    return {**asdict(edit.entry), "retrain": edit.retrain, "added": list(edit.added),
            "removed": list(edit.removed), "moved": dict(edit.moved), "live": live}


@router.get("/entries", response_model=EntriesOut)
def entries(_: ManagerDep, editor: EditorDep,
            q: Annotated[str, Query(max_length=100, description="text in the id, title, answer or an example")] = ""
            ) -> Any:
    """Every entry, or those a search finds (a plain substring, Chinese or Latin)."""
    return {"entries": [asdict(s) for s in editor.entries(q)]}


@router.get("/entries/{intent}", response_model=EntryOut)
def entry(_: ManagerDep, intent: Intent, editor: EditorDep) -> Any:
    """One entry: its examples and their files, follow-ups, the filled answer and the version to edit."""
    return asdict(editor.entry(intent))


@router.post("/entries", response_model=EditOut, status_code=201)
def create(manager: ManagerDep, body: EntryIn, editor: EditorDep, request: Request) -> Any:
    """A new entry (family.name; a new family or an existing one), written to shop_entries.yml. 409
    if the id exists. Its answer is live at once; the model learns its examples when trained again."""
    edit = editor.create_entry(body.intent, body.title, body.answer, body.examples, manager)
    return _edit_out(edit, serve_knowledge(request))


@router.put("/entries/{intent}", response_model=EditOut)
def update(manager: ManagerDep, intent: Intent, body: EntryUpdateIn, editor: EditorDep, request: Request) -> Any:
    """Save an entry's title, answer and examples (the whole list) over the version read; 409 when
    someone saved it in between (nothing is written: read it again)."""
    edit = editor.update_entry(intent, title=body.title, answer=body.answer, examples=body.examples,
                               version=body.version, who=manager)
    return _edit_out(edit, edit.entry.version == body.version or serve_knowledge(request))


@router.get("/shop", response_model=ShopOut)
def shop(_: ManagerDep, editor: EditorDep) -> Any:
    """The shop's facts (shop.yml) that answers are filled from, and their version."""
    return asdict(editor.shop())


@router.put("/shop", response_model=ShopOut)
def update_shop(manager: ManagerDep, body: ShopIn, editor: EditorDep, request: Request) -> Any:
    """Set values by dotted key (`{"shipping.cutoff_time": "17:00"}`); every answer must still fill.
    409 when shop.yml was saved in between."""
    view = editor.update_shop(body.values, body.version, manager)
    return {**asdict(view), "live": view.version == body.version or serve_knowledge(request)}


@router.get("/changes", response_model=ChangesOut)
def changes(_: ManagerDep, editor: EditorDep,
            limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
            before: Annotated[int | None, Query(ge=1, description="an id: the changes older than it")] = None) -> Any:
    """The audit log, newest first: who changed what, when, the entry before and after."""
    return {"changes": [asdict(c) for c in editor.changes(limit, before)]}
