"""The manager's review queue: what the bot did not know, grouped, and decisions on it. Manager token."""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from api.routes.admin import ManagerDep
from api.routes.kb import get_editor, serve_knowledge
from api.schemas import ErrorOut
from bot.manage.entries import INTENT_ID, MAX_ANSWER_CHARS, MAX_ID_CHARS, MAX_TITLE_CHARS
from bot.manage.review import MAX_ITEMS, ReviewQueue

router = APIRouter(prefix="/v1/admin/review", tags=["review"], responses={
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut},
    422: {"model": ErrorOut}})
_created = threading.Lock()

ClusterId = Annotated[str, Path(min_length=1, max_length=64, description="a group's id from GET /v1/admin/review")]
Intent = Annotated[StrictStr, Field(max_length=MAX_ID_CHARS, pattern=INTENT_ID,
                                    description="an entry's id, family.name")]
MessageIds = Annotated[list[StrictInt] | None, Field(None, min_length=1, max_length=MAX_ITEMS,
                                                     description="some messages of the group; default all")]


# A message of the queue, as stored (personal data masked).
class ReviewMessageOut(BaseModel):
    id: int
    text: str
    at: str
    source: str = Field(description="low_confidence | out_of_scope | repeated_fallback | requested | complaint | "
                                    "problem (the model's unsure guess) | clarify | suggest | "
                                    "pair (two entries answered, neither sure alone) | relabelled")
    bot_guess: str | None
    agent_label: str | None = Field(None, description="the agent's label, when it differs from the bot's guess")


# An entry a group is near to, by the model's mean probability over its messages.
class SuggestedOut(BaseModel):
    intent: str
    score: float


class ClusterOut(BaseModel):
    id: str
    size: int
    messages: list[ReviewMessageOut]
    suggested: list[SuggestedOut]


class ReviewOut(BaseModel):
    clusters: list[ClusterOut]


# Decisions on a group (or on `message_ids` of it), one shape per action.
class AddExamplesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["add_examples"]
    intent: Intent
    message_ids: MessageIds


class NewEntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["new_entry"]
    intent: Intent
    title: StrictStr = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    answer: StrictStr = Field(min_length=1, max_length=MAX_ANSWER_CHARS)
    message_ids: MessageIds


class HumanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["human"]
    message_ids: MessageIds


class DismissIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["dismiss"]
    message_ids: MessageIds


DecisionIn = Annotated[AddExamplesIn | NewEntryIn | HumanIn | DismissIn, Field(discriminator="action")]


class DecisionOut(BaseModel):
    cluster: str
    action: str
    intent: str | None
    message_ids: list[int]
    who: str
    at: str
    retrain: bool = Field(description="examples were added: train a new model for the bot to learn them")


def get_review(request: Request) -> ReviewQueue:
    """The app's review queue, made on first use: the chat server never pays for it, nor for
    scikit-learn, which the grouping imports only when it runs."""
    state = request.app.state
    with _created:
        if getattr(state, "review", None) is None:
            state.review = ReviewQueue(state.conversations.store, state.bot, get_editor(request))
    return state.review  # type: ignore[no-any-return]


ReviewDep = Annotated[ReviewQueue, Depends(get_review)]


@router.get("", response_model=ReviewOut)
def review(manager: ManagerDep, queue: ReviewDep) -> Any:
    """The open groups of messages the bot did not know, biggest first, each with its messages
    (newest first) and the entries it is nearest to."""
    return {"clusters": [c.as_dict() for c in queue.clusters()]}


@router.post("/{cluster_id}", response_model=DecisionOut)
def decide(manager: ManagerDep, cluster_id: ClusterId, body: DecisionIn, queue: ReviewDep, request: Request) -> Any:
    """Decide a group, or some of its messages: add them as examples of an entry, make a new entry of
    them (its answer is served at once, as the editor's), mark them "always a person" (examples of
    human.other), or dismiss them. 404 when the group is no longer in the queue (it changed: read it
    again); 422 for an entry that does not exist."""
    fields = body.model_dump(exclude={"action", "message_ids"})
    out = queue.decide(cluster_id, body.action, manager, message_ids=body.message_ids, **fields)
    if body.action == "new_entry":
        serve_knowledge(request)
    return out
