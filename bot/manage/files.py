"""Writing the data folder safely: one editor at a time, whole files or none, checked before kept.

The data folder is the one source of truth (training and serving read it), so a write must never
leave it half done: each file is replaced atomically, the folder is loaded again before the change
is kept, and a failure puts the old bytes back.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

from bot.errors import ConflictError, KnowledgeWriteError

log = logging.getLogger(__name__)
LOCK_FILE = ".kefu-edit.lock"
# Long enough for any edit (a write and a reload of the folder take well under a second); short
# enough that a request does not hang behind a stuck process.
LOCK_TIMEOUT = 10.0
T = TypeVar("T")


@contextmanager
def edit_lock(data_dir: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the data folder's edit lock: an flock on a file beside the data, so that editors in
    several server processes (or threads: each takes its own descriptor) never interleave."""
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise KnowledgeWriteError(f"cannot lock the data folder {data_dir}: {exc.strerror}") from None
    try:
        _acquire(fd, timeout)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _acquire(fd: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise ConflictError("another change to the knowledge base is being saved; try again") from None
            time.sleep(0.05)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: a temporary file in the same folder, flushed to disk, renamed over
    the old one. A crash at any point leaves either the old file or the new one, whole."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """The rename itself reaches the disk only when the folder's entry does."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_checked(texts: Mapping[Path, str], check: Callable[[], T]) -> T:
    """Write every file, then run `check` (which loads the folder again); if a write or the check
    fails, put back the bytes each file had and raise. OSError becomes KnowledgeWriteError."""
    old = {p: p.read_bytes() if p.exists() else None for p in texts}
    try:
        for path, text in texts.items():
            atomic_write(path, text.encode("utf-8"))
        return check()
    except BaseException as exc:
        _restore(old)
        if isinstance(exc, OSError):
            raise KnowledgeWriteError(f"cannot write the data folder: {exc.strerror or exc}; nothing changed") \
                from None
        raise


def _restore(old: Mapping[Path, bytes | None]) -> None:
    """Best effort: each file as it was (a file that was not there is removed again)."""
    for path, data in old.items():
        try:
            if data is None:
                path.unlink(missing_ok=True)
            elif path.read_bytes() != data:
                atomic_write(path, data)
        except OSError:
            log.exception("could not restore %s", path)
