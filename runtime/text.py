"""Text side of the model: the tokenizer over the model's vocabulary and the tiny text encoder.

How a prompt becomes tokens (`split_words`), as a writer means the text:
- case-insensitive; accents are folded ("Café" -> cafe); words are runs of letters, digits are one token each;
- hyphens and dashes separate words ("close-up" -> close up) and are never a token themselves;
- a possessive "'s" (or a trailing "'") is dropped ("the knight's sword" -> the knight sword); an
  apostrophe inside a word is removed ("don't" -> dont);
- `,` `.` `:` are the vocabulary's punctuation; `!` `?` `;` and an ellipsis end a sentence like `.`, and a
  run of sentence marks counts once ("what?!" -> what .);
- quotes, brackets and whitespace only separate; any other symbol is a piece of its own (unknown unless the
  vocabulary has it).

Words in another form than the vocabulary's read as the vocabulary's form (`Tokenizer.reading`): a writer's
inflection of a known word (base form, -s, -ing, -ed, the common irregular past forms: "walk", "walked" ->
walks; "ran" -> runs) and the model's own synonyms (`synonyms.txt` beside the vocabulary: "draws" -> swings,
aspect verbs such as "starts" read as nothing). `PromptCheck.read_as` lists each such reading; nothing else is
changed, so a word for something the world cannot draw is still unknown.

Two prompt modes, chosen per story: `strict` refuses a prompt with pieces outside the vocabulary
(`UnknownWordsError` lists them); `lenient` drops them and reports them (`PromptCheck.dropped`), and still
refuses a prompt with no known word left. In both, prompts longer than the encoder's `text_len` are refused,
never truncated. `strict` is the runtime's default: text a developer writes should fail where it is written,
not turn silently into a different shot; `lenient` is for text typed by players.
The encoder gives per-token embeddings (1, text_len, dim); padded positions are zeroed, as in Wan.
The official preset's umT5-XXL is user-supplied and is not part of this package.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from runtime.config import TextConfig
from runtime.errors import InvalidPromptError, UnknownWordsError

PAD, BOS = "<pad>", "<bos>"
PROMPT_MODES = ("strict", "lenient")
PUNCTUATION = frozenset(",.:")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})
# a word (letters, inner apostrophes), a digit, a run of sentence marks, or any other single symbol
_PIECE = re.compile(r"[a-z]+(?:'[a-z]+)*'?|[0-9]|[.!?;\u2026]+|[^\sa-z0-9]")
_SEPARATORS = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2015_'\"()[]{}<>\u201c\u201d\u00ab\u00bb")


def split_words(text: str) -> list[str]:
    """The pieces of `text` as the vocabulary spells them (see the module docstring for the rules)."""
    folded = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES).casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    pieces = []
    for piece in _PIECE.findall(folded):
        if piece in _SEPARATORS:
            continue
        if piece[0].isalpha():
            piece = piece[:-2] if piece.endswith("'s") else piece.rstrip("'")
            piece = piece.replace("'", "")
        elif piece[0] in ".!?;\u2026":
            piece = "."
        pieces.append(piece)
    return pieces


# English past forms a writer may use, by their base form (only those whose base may be a vocabulary's lemma matter)
_IRREGULAR = {"ran": "run", "flew": "fly", "fought": "fight", "struck": "strike", "swung": "swing", "leapt": "leap",
              "met": "meet", "drew": "draw", "fled": "flee", "stood": "stand", "sat": "sit", "spat": "spit",
              "began": "begin", "begun": "begin", "rose": "rise", "held": "hold", "went": "go", "came": "come",
              "hid": "hide", "threw": "throw", "saw": "see"}
_MIN_LEMMA = 3  # shorter stems ("i" of "is", "k" of "king") would join unrelated words


def lemmas(word: str) -> tuple[str, ...]:
    """The base forms `word` may be an inflection of, most literal first: "walked" -> walked, walk, walke;
    "running" -> running, runn, runne, run. Spelling rules only: no dictionary, so some are not words."""
    out = [word, _IRREGULAR.get(word, word)]
    if word.endswith("ies"):
        out.append(word[:-3] + "y")
    if word.endswith("es"):
        out.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss"):
        out.append(word[:-1])
    if word.endswith("ied"):
        out.append(word[:-3] + "y")
    for suffix in ("ing", "ed"):
        if word.endswith(suffix):
            stem = word[:-len(suffix)]
            out += [stem, stem + "e"] + ([stem[:-1]] if len(stem) > 2 and stem[-1] == stem[-2] else [])
    return tuple(w for w in dict.fromkeys(out) if len(w) >= _MIN_LEMMA)


def read_synonyms(path: str | Path) -> dict[str, tuple[str, ...]]:
    """`word = reading` lines (`#` starts a comment); an empty reading means the word adds nothing to draw."""
    table = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        word, sep, reading = line.partition("=")
        if not sep or not word.strip().isalpha():
            raise ValueError(f"{path}:{number}: expected 'word = reading', got {line!r}")
        table[word.strip()] = tuple(reading.split())
    return table


def shot_prompt(global_caption: str, shot_index: int, caption: str) -> str:
    """The official composition: global caption + "shot{i}:" + shot caption (1-based i)."""
    return f"{global_caption.strip()} shot{shot_index + 1}: {caption.strip()}"


@dataclass(frozen=True)
class PromptCheck:
    """What the encoder reads of a prompt: `tokens` (with the leading <bos>, at most `text_len`), `text` (the
    known pieces joined by spaces; encoding it strictly gives the same ids), the pieces `dropped` (lenient) and
    the words `read_as` another form of the vocabulary (see `Tokenizer.reading`)."""

    tokens: int
    text: str
    dropped: tuple[str, ...] = ()
    read_as: tuple[tuple[str, str], ...] = ()  # (word as written, what the encoder reads; "" for nothing)


class Tokenizer:
    """Word-level tokenizer; id 0 is padding, id 1 begins every prompt."""

    def __init__(self, words: list[str], text_len: int, synonyms: dict[str, tuple[str, ...]] | None = None):
        self.vocab = [PAD, BOS] + [w for w in words if w not in (PAD, BOS)]
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.text_len = text_len
        self._by_lemma: dict[str, list[str]] = {}
        for w in self.vocab[2:]:
            for lemma in lemmas(w):
                self._by_lemma.setdefault(lemma, []).append(w)
        self.synonyms = dict(synonyms or {})
        for word, reading in self.synonyms.items():
            missing = [w for w in reading if self._form(w, w) is None]
            if missing:
                raise ValueError(f"synonym {word!r} reads as {' '.join(missing)!r}, which the vocabulary lacks")

    @classmethod
    def from_file(cls, path: str | Path, text_len: int, synonyms: str | Path | None = None) -> "Tokenizer":
        words = [w.strip() for w in Path(path).read_text().splitlines() if w.strip()]
        return cls(words, text_len, read_synonyms(synonyms) if synonyms is not None else None)

    def _form(self, lemma: str, written: str) -> str | None:
        """The vocabulary's word for `lemma` in the form nearest `written`: a gerund reads as a gerund (or the
        -s form), any other form as the -s form only ("walk" -> walks), so a noun the vocabulary has only as an
        -ing or -ed word never takes a plain word's place ("even" is not "evening", "lock" not "locked")."""
        if lemma in self.index:
            return lemma
        forms = self._by_lemma.get(lemma, ())
        if written.endswith("ing"):
            ranked = [w for w in forms if w.endswith("ing")] + [w for w in forms if w.endswith("s")]
        else:
            ranked = [w for w in forms if w.endswith("s")]
        return ranked[0] if ranked else None

    def reading(self, piece: str) -> tuple[str, ...] | None:
        """What the encoder reads for `piece`: itself when known, the vocabulary's form of an inflection or of a
        synonym (possibly nothing: an aspect verb), or None when the word is unknown."""
        if piece in self.index:
            return (piece,)
        for lemma in lemmas(piece):
            if lemma in self.synonyms:
                return tuple(self._form(w, piece) for w in self.synonyms[lemma])
            form = self._form(lemma, piece)
            if form is not None:
                return (form,)
        return None

    @property
    def words(self) -> tuple[str, ...]:
        """The vocabulary a prompt may use (no special tokens), in id order."""
        return tuple(self.vocab[2:])

    def unknown_words(self, text: str) -> list[str]:
        """The pieces of `text` that have no reading, each once, in order."""
        return list(dict.fromkeys(w for w in split_words(text) if self.reading(w) is None))

    def check(self, text: str, mode: str = "strict") -> PromptCheck:
        """Validates `text` in `mode` without encoding it. Raises InvalidPromptError (empty, too long,
        nothing known left) or UnknownWordsError (strict)."""
        if mode not in PROMPT_MODES:
            raise InvalidPromptError(f"prompt mode must be one of {', '.join(PROMPT_MODES)}, got {mode!r}")
        pieces = split_words(text)
        if not pieces:
            raise InvalidPromptError("the prompt is empty")
        readings = [(w, self.reading(w)) for w in pieces]
        unknown = list(dict.fromkeys(w for w, r in readings if r is None))
        if unknown and mode == "strict":
            raise UnknownWordsError(unknown)
        kept = [k for _, r in readings if r is not None for k in r]
        if not any(w not in PUNCTUATION for w in kept):
            raise InvalidPromptError(f"no word of the prompt is in the model's vocabulary (dropped: {', '.join(unknown)})")
        if len(kept) + 1 > self.text_len:
            raise InvalidPromptError(f"the prompt is {len(kept) + 1} tokens; the model reads at most {self.text_len}")
        read_as = dict.fromkeys((w, " ".join(r)) for w, r in readings if r is not None and r != (w,))
        return PromptCheck(len(kept) + 1, " ".join(kept), tuple(unknown), tuple(read_as))

    def encode(self, text: str, out=None, mode: str = "strict"):
        """Token ids, padded to text_len (int64). Raises as `check` does."""
        import numpy as np

        pieces = self.check(text, mode).text.split()
        ids = np.zeros((1, self.text_len), np.int64) if out is None else out
        ids.fill(0)
        ids[0, 0] = self.index[BOS]
        ids[0, 1:len(pieces) + 1] = [self.index[w] for w in pieces]
        return ids


class OpenVocabulary:
    """Base of tokenizers that spell any text (sentencepiece, the random-weights stand-in): no word is unknown,
    so both prompt modes read a prompt whole. Subclasses give `encode(text, out=None)` and `text_len`."""

    words: tuple[str, ...] = ()  # an open vocabulary is not listed

    def unknown_words(self, text: str) -> list[str]:
        return []

    def check(self, text: str, mode: str = "strict") -> PromptCheck:
        if mode not in PROMPT_MODES:
            raise InvalidPromptError(f"prompt mode must be one of {', '.join(PROMPT_MODES)}, got {mode!r}")
        ids = self.encode(text)  # raises for empty and too-long prompts
        return PromptCheck(int((ids != 0).sum()), text)


class _EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, length, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = x + self.out(y.transpose(1, 2).reshape(b, length, dim))
        return x + self.ffn(self.norm2(x))


class TinyTextEncoder(nn.Module):
    """A small pre-LN transformer over word tokens: (1, L) int64 -> (1, L, dim) float32."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.pos = nn.Parameter(torch.randn(1, cfg.text_len, cfg.dim) * 0.02)
        self.layers = nn.ModuleList(_EncoderLayer(cfg.dim, cfg.num_heads) for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        keep = (ids != 0).unsqueeze(-1).to(self.pos.dtype)  # (B, L, 1)
        bias = ((1.0 - keep.transpose(1, 2)) * -1e9).unsqueeze(1)  # (B, 1, 1, L): padded keys not attended
        x = self.embed(ids) + self.pos
        for layer in self.layers:
            x = layer(x, bias)
        return self.norm(x) * keep
