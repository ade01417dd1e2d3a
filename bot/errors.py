"""One error tree for the core; api/ maps it to HTTP once, the CLI to exit codes."""

from __future__ import annotations


class KefuError(Exception):
    """Base class of every error the core raises on purpose."""


class KnowledgeBaseError(ValueError, KefuError):
    """The FAQ data or the shop config is malformed; the message names file and entry."""


class ModelNotFoundError(KefuError):
    """No trained model where one was expected; run 'kefu train'."""


class IncompatibleModelError(KefuError):
    """A model artefact does not match this code, its libraries or its checksum."""


class InvalidInputError(ValueError, KefuError):
    """A message the bot cannot take (empty, too long, wrong type)."""


class NotFoundError(KefuError):
    """A session, handoff or other record does not exist."""


class ConflictError(KefuError):
    """The record is not in a state that allows the action (e.g. claimed twice)."""


class StoreUnavailableError(KefuError):
    """The database cannot be reached; the caller should answer 503 and retry later."""


class SessionNotFoundError(NotFoundError):
    """No such chat session (or it expired): the shopper starts a new one."""


class AlreadyHandedOffError(ConflictError):
    """The session already has an open handoff (the database allows one at a time)."""


class KnowledgeWriteError(KefuError):
    """The data folder could not be written (permissions, a full disk); the old files were kept."""


class ImageRefusedError(InvalidInputError):
    """A picture kefu will not keep: `kind` says why (empty, too_large, not_image, polyglot, too_many_pixels,
    no_person); the API answers in the shop's voice (`image_<kind>`)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
