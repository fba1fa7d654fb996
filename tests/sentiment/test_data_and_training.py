"""The example's data and training pieces: the corpora's parsing and checks, the training
procedure, the break-even n of the figure."""

from __future__ import annotations

import shutil
from pathlib import Path

import corpora
import numpy as np
import pytest
from figure import break_even
from training import C_GRID, fit_head


def write(path: Path, lines: list[str]) -> Path:
    path.write_bytes("".join(line + "\r\n" for line in lines).encode())
    return path


def test_a_malformed_line_is_named_by_file_and_line(tmp_path: Path):
    path = write(tmp_path / "movie.txt", ["1\t2.5\tgood", "2\tno tab here"])
    with pytest.raises(corpora.CorpusError) as caught:
        corpora.read(path, "movie")
    assert str(caught.value) == (
        f"{path}:2: expected 3 tab-separated fields (id, rating, text), got 2"
    )


def test_a_rating_that_is_not_a_number_is_named(tmp_path: Path):
    path = write(tmp_path / "movie.txt", ["1\tgreat\tgood"])
    with pytest.raises(corpora.CorpusError) as caught:
        corpora.read(path, "movie")
    assert str(caught.value) == f"{path}:1: rating 'great' is not a number"


def test_a_file_of_the_wrong_length_is_refused(tmp_path: Path):
    path = write(tmp_path / "amazon.txt", ["1_1\t-0.9\tbroken", "1_2\t0\tneutral"])
    with pytest.raises(corpora.CorpusError) as caught:
        corpora.read(path, "amazon")
    assert str(caught.value) == f"{path}: 2 sentences, expected 3708"


def test_labels_are_the_sign_of_the_rating():
    assert corpora.Sentence("a", 0.4, "ok").label == 1
    assert corpora.Sentence("b", -2.0, "bad").label == 0
    assert corpora.Sentence("c", 0.0, "meh").label is None


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fetch_checks_the_cache_and_fetches_again_what_does_not_match(tmp_path: Path):
    """A damaged cached file is not read: fetch gets the sdist again with pip and checks it."""
    cache = tmp_path / "cache"
    paths = corpora.fetch(cache)  # pip download of the vaderSentiment 3.3.2 sdist
    movie = corpora.read(paths["movie"], "movie")
    amazon = corpora.read(paths["amazon"], "amazon")
    assert (len(movie), len(amazon)) == (10_605, 3_708)
    assert [s.label for s in movie].count(None) == 37
    assert [s.label for s in amazon].count(None) == 98
    assert amazon[0] == corpora.Sentence(
        "1_1", -0.9, "troubleshooting ad-2500 and ad-2600 no picture scrolling b/w."
    )
    good = paths["amazon"].read_bytes()
    paths["amazon"].write_bytes(good.replace(b"troubleshooting", b"TROUBLESHOOTING"))
    assert corpora.fetch(cache) == paths
    assert paths["amazon"].read_bytes() == good
    shutil.rmtree(cache)


def separable(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n noisy points of two classes in 8 dimensions, as float32 like embeddings."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 8)) + np.outer(labels * 2 - 1, np.linspace(1, 0.1, 8)) * 0.6
    return x.astype(np.float32), labels.astype(np.int64)


def test_the_head_is_chosen_on_the_validation_split_and_scores_new_rows():
    x, y = separable(400, 1)
    fit = fit_head(x, y, seed=0)
    assert (fit.n_train, fit.n_validation) == (360, 40)
    assert set(fit.validation) == set(C_GRID)
    assert fit.validation_auc == max(fit.validation.values())
    new_x, new_y = separable(400, 2)
    p = fit.head.probabilities(new_x)
    assert p.shape == (400,) and ((p > 0) & (p < 1)).all()
    assert np.mean((p > 0.5) == new_y) > 0.8


def test_a_row_scores_the_same_alone_and_among_others():
    x, y = separable(400, 3)
    head = fit_head(x, y, seed=0).head
    together = head.probabilities(x)
    alone = np.array([head.probabilities(x[i : i + 1])[0] for i in range(len(x))])
    assert np.array_equal(together, alone)


def test_too_few_examples_of_a_class_are_refused():
    x, y = separable(100, 4)
    y[:] = 1
    y[:5] = 0
    with pytest.raises(ValueError, match=r"need at least 10 positive and 10 negative"):
        fit_head(x, y, seed=0)


def curve(*points: tuple[int, float]) -> list[dict]:
    return [{"n": n, "mean": mean} for n, mean in points]


def test_break_even_is_interpolated_in_log_n():
    even = break_even(0.8, curve((100, 0.6), (100 * 10, 0.7), (100 * 100, 0.9)))
    assert even.n == pytest.approx(1000 * 10**0.5)
    assert even.text == "about 3,162 (between 1,000 and 10,000)"


def test_break_even_says_when_there_is_none():
    assert break_even(0.5, curve((100, 0.6))).text == (
        "at most 100 (the smallest n tried already reaches it)"
    )
    assert break_even(0.95, curve((100, 0.6), (200, 0.7))).text == (
        "not reached with up to 200 labelled sentences"
    )
    assert break_even(0.9, []).n is None
