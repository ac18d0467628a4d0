"""Text to token ids for the recurrent and transformer spaces: a word or character vocabulary
built from the training split only (most frequent first), or a Hugging Face tokenizer
(`tokenizer: hf:<name>`, when `transformers` is installed). Id 0 pads, id 1 is unknown."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from trainables.errors import InputError

PAD, UNKNOWN = 0, 1
_WORD = re.compile(r"\w+|[^\w\s]")


def pieces(text: str, kind: str) -> list[str]:
    return list(text.lower()) if kind == "char" else _WORD.findall(text.lower())


class Tokenizer:
    def __init__(self, kind: str, vocab_size: int, max_length: int):
        if kind not in ("word", "char") and not kind.startswith("hf:"):
            raise InputError(
                f"trainable.options.dataset.tokenizer: {kind!r} is not word, char or hf:<name>"
            )
        self.kind, self.vocab_size, self.max_length = kind, vocab_size, max_length
        self.vocab: dict[str, int] = {}
        self._hf = None
        if kind.startswith("hf:"):
            try:
                from transformers import AutoTokenizer
            except ImportError:
                raise InputError(
                    f"trainable.options.dataset.tokenizer: {kind} needs `pip install transformers`"
                ) from None
            self._hf = AutoTokenizer.from_pretrained(kind[3:])
            self.vocab_size = int(self._hf.vocab_size)

    def fit(self, texts: Sequence[str]) -> Tokenizer:
        if self._hf is None:
            counts = Counter(p for t in texts for p in pieces(t, self.kind))
            common = [p for p, _ in counts.most_common(self.vocab_size - 2)]
            self.vocab = {p: i + 2 for i, p in enumerate(common)}
            self.vocab_size = len(self.vocab) + 2
        return self

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(N, max_length) int64 ids, cut or padded at the end."""
        out = np.full((len(texts), self.max_length), PAD, dtype=np.int64)
        for row, text in enumerate(texts):
            if self._hf is not None:
                ids = self._hf(text, truncation=True, max_length=self.max_length)["input_ids"]
            else:
                ids = [self.vocab.get(p, UNKNOWN) for p in pieces(text, self.kind)]
            ids = ids[: self.max_length]
            out[row, : len(ids)] = ids
        return out
