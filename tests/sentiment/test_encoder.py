"""The served model's encoder: all-MiniLM-L6-v2 from the installed int8 ONNX file, checked,
batch-independent, and rebuilt when unpickled."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sentiment_model import (
    DIMENSION,
    VOCAB_FILE,
    EncoderError,
    LinearHead,
    MiniLMEncoder,
    SentimentModel,
)

TEXTS = [
    "The battery lasts for days and the screen is gorgeous.",
    "Worst purchase ever.",
    "it stopped working after a week, and support never answered my emails about the refund",
    "ok",
    "",
]


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    return MiniLMEncoder.from_file()


def test_embeddings_are_unit_vectors_one_per_text_in_order(encoder: MiniLMEncoder):
    embeddings = encoder.encode(TEXTS)
    assert embeddings.shape == (len(TEXTS), DIMENSION)
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    # order is kept although texts are sorted by length into batches
    assert np.array_equal(encoder.encode(TEXTS[::-1]), embeddings[::-1])
    assert encoder.encode([]).shape == (0, DIMENSION)


def test_a_text_gets_the_same_embedding_alone_and_in_any_batch(encoder: MiniLMEncoder):
    """Padding and batch composition change nothing, bit for bit: a served model answers a
    text the same whatever else shares its request."""
    many = TEXTS * 8  # 40 texts: three batches of different padded lengths
    together = encoder.encode(many)
    for i, text in enumerate(TEXTS):
        assert np.array_equal(encoder.encode([text])[0], together[i])


def test_similar_sentences_are_closer_than_unrelated_ones(encoder: MiniLMEncoder):
    a, b, c = encoder.encode(
        ["The phone's battery is excellent.", "This phone has a great battery.", "I hate rain."]
    )
    assert float(a @ b) > 0.7 > float(a @ c)


def test_a_pickled_model_is_rebuilt_and_scores_the_same(encoder: MiniLMEncoder):
    rng = np.random.default_rng(0)
    model = SentimentModel(encoder, LinearHead(rng.normal(size=DIMENSION), 0.25))
    copy = pickle.loads(pickle.dumps(model))
    assert copy.score(TEXTS) == model.score(TEXTS)
    assert all(0 < p < 1 for p in copy.score(TEXTS))
    # the vocabulary travels in the pickle; the ONNX session does not
    assert b"onnxruntime" not in pickle.dumps(encoder)


def test_a_vocabulary_that_is_not_minilms_is_refused():
    with pytest.raises(EncoderError) as caught:
        MiniLMEncoder(VOCAB_FILE.read_text(encoding="utf-8").replace("[UNK]", "[unk]"))
    assert str(caught.value) == "the vocabulary is not all-MiniLM-L6-v2's (sha256 07eced375cec...)"
