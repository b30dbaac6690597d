"""spaCy's English tokenizer with the fastai rules: HTML clean-up, case and repetition markers.

Only ``spacy.blank("en")`` is used (rules, no statistical model), so nothing is downloaded. The text is
cleaned with a few compiled regexes before spaCy splits it; the case and word-repetition markers are
added in one pass over the tokens afterwards. Everything runs in one process: on 2 cores spaCy's own
multi-process mode was slower.
"""
from __future__ import annotations

import functools
import html
import re
from importlib import metadata

UNK, PAD, BOS, EOS = "xxunk", "xxpad", "xxbos", "xxeos"
TK_MAJ, TK_UP, TK_REP, TK_WREP = "xxmaj", "xxup", "xxrep", "xxwrep"
SPECIAL_TOKENS = (UNK, PAD, BOS, EOS, TK_MAJ, TK_UP, TK_REP, TK_WREP)
# Other fastai special tokens a vocabulary may carry (fields, fake padding); never words.
OTHER_SPECIALS = ("xxfld", "xxfake")


def is_special(token: str) -> bool:
    """A marker or control token rather than a word (what text generation must never sample)."""
    return token in SPECIAL_TOKENS or token in OTHER_SPECIALS
RULES_VERSION = 1  # bump when a rule changes: cached token ids are keyed by it

_BR = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)
_TAG = re.compile(r"</?[a-zA-Z][^<>]{0,40}>")  # <i>, </b>, <a href=...>: markup left in reviews
_CHAR_REP = re.compile(r"(\S)(\1{3,})")  # a character repeated 4+ times: "!!!!!" or "soooo"
_SPACE_AROUND = re.compile(r"([/#\n])")
_MANY_SPACES = re.compile(r"[ \t\r\f\v]{2,}")


def fix_html(text: str) -> str:
    """Line breaks for <br />, entities decoded, other tags dropped, escaped quotes unescaped."""
    if "<" in text:  # most reviews have no markup at all: skip the regexes then
        text = _TAG.sub(" ", _BR.sub("\n", text))
    if "\\" in text:
        text = text.replace('\\"', '"').replace("\\n", "\n")
    if "&" in text:
        text = html.unescape(text)
    return text.replace("\xa0", " ")


def replace_char_repetition(text: str) -> str:
    """'sooooo' -> 's xxrep 6 o'-style markers: 'xxrep N c' for a character repeated N (>= 4) times."""
    def sub(m):
        c, rest = m.groups()
        return f" {TK_REP} {len(rest) + 1} {c} "
    return _CHAR_REP.sub(sub, text)


def preprocess(text: str) -> str:
    text = fix_html(text)
    text = replace_char_repetition(text)
    text = _SPACE_AROUND.sub(r" \1 ", text)
    return _MANY_SPACES.sub(" ", text).strip()


def postprocess(tokens: list[str], bos: bool = True) -> list[str]:
    """Case markers (xxup for ALL CAPS words, xxmaj for Capitalised ones; every token lower-cased),
    word repetitions ('xxwrep N word' for a word repeated 3+ times), whitespace tokens dropped."""
    out = [BOS] if bos else []
    append = out.append
    prev, count = None, 0
    for tok in tokens:
        low = tok.lower()
        if low == prev:  # a run of the same word: hold it back until the run ends
            count += 1
            continue
        if low.isspace():
            if "\n" not in low:
                continue
            low = "\n"
            if low == prev:
                count += 1
                continue
        if count:
            _emit(out, prev, count)
        prev, count = low, 1
        if tok != low:
            if len(tok) > 1 and tok.isupper():
                append(TK_UP)
            elif tok[0].isupper():
                append(TK_MAJ)
    if count:
        _emit(out, prev, count)
    return out


def _emit(out: list[str], word, count: int) -> None:
    if count == 1:
        out.append(word)
    elif count >= 3:
        # The case marker (if any) was already emitted before the first copy; keep it before the word.
        marker = out.pop() if out and out[-1] in (TK_UP, TK_MAJ) else None
        out.extend([TK_WREP, str(count)])
        if marker:
            out.append(marker)
        out.append(word)
    else:
        out.extend([word] * count)


class Tokenizer:
    """Text to token strings with spaCy's rule-based English tokenizer and the rules above."""

    def __init__(self, lang: str = "en", bos: bool = True):
        self.lang, self.bos = lang, bos

    @functools.cached_property
    def spacy_tokenizer(self):
        # spaCy is loaded on first use, so a run whose tokens all come from the cache never imports it.
        import spacy

        nlp = spacy.blank(self.lang)
        self._strings = _StringCache(nlp.vocab.strings)
        return nlp.tokenizer

    def settings(self) -> dict:
        """Everything that changes the output; part of the cache key."""
        return {"lang": self.lang, "bos": self.bos, "rules": RULES_VERSION, "spacy": metadata.version("spacy")}

    def _words(self, doc) -> list[str]:
        """The token strings of a Doc: one C call for their hashes, then a dict lookup each (about a
        third faster than reading ``token.text`` token by token)."""
        from spacy.attrs import ORTH

        return list(map(self._strings.__getitem__, doc.to_array(ORTH).tolist())) if len(doc) else []

    def __call__(self, text: str) -> list[str]:
        doc = self.spacy_tokenizer(preprocess(text))
        return postprocess(self._words(doc), self.bos)

    def tokenize(self, texts, progress: bool | None = None, desc: str = "tokenizing") -> list[list[str]]:
        """Tokenize many texts in this process, with a progress bar."""
        from harness.progress import progress_bar

        texts = list(texts)
        docs = self.spacy_tokenizer.pipe((preprocess(t) for t in texts), batch_size=1000)
        bar = progress_bar(docs, total=len(texts), desc=desc, unit="doc", disable=None if progress is None else not progress)
        return [postprocess(self._words(doc), self.bos) for doc in bar]


class _StringCache(dict):
    """spaCy string hash -> string, filled on first use."""

    def __init__(self, strings):
        super().__init__()
        self.strings = strings

    def __missing__(self, key):
        value = self[key] = self.strings[key]
        return value


_NO_SPACE_BEFORE = {".", ",", "!", "?", ":", ";", ")", "'s", "n't", "'re", "'ve", "'ll", "'d", "'m", "%", "\n"}


def detokenize(tokens: list[str]) -> str:
    """Readable text from tokens: markers applied (``xxmaj w`` -> W..., ``xxup w`` -> W, ``xxrep n c``
    -> c * n, ``xxwrep n w`` -> w repeated n times), punctuation re-attached. Control tokens, and a
    marker with nothing to apply to, are left out."""
    words: list[str] = []
    i, case = 0, None
    while i < len(tokens):
        tok = tokens[i]
        if tok in (TK_MAJ, TK_UP):
            case, i = tok, i + 1
            continue
        if tok in (TK_REP, TK_WREP):
            n_ok = i + 1 < len(tokens) and tokens[i + 1].isdigit()
            j = i + 2
            if n_ok and j < len(tokens) and tokens[j] in (TK_MAJ, TK_UP):  # "xxwrep 3 xxup the"
                case, j = tokens[j], j + 1
            if not n_ok or j >= len(tokens) or is_special(tokens[j]):
                i += 2 if n_ok else 1  # a marker without its count or its unit: drop it (and its count)
                continue
            n, unit, i = int(tokens[i + 1]), tokens[j], j + 1
            text = unit * n if tok == TK_REP else " ".join([unit] * n)
            if tok == TK_REP and words and not words[-1].endswith("\n"):
                # The tokenizer split a repeated character off its word ("sooooo" -> "s xxrep 5 o").
                words[-1] += text[:1].upper() + text[1:] if case == TK_MAJ else text.upper() if case == TK_UP else text
                case = None
                continue
        elif is_special(tok):
            i += 1
            continue
        else:
            text, i = tok, i + 1
        if case == TK_MAJ:
            text = text[:1].upper() + text[1:]
        elif case == TK_UP:
            text = text.upper()
        case = None
        if words and (text in _NO_SPACE_BEFORE or words[-1].endswith(("(", "\n"))):
            words[-1] += text
        else:
            words.append(text)
    return " ".join(words).replace(" \n", "\n")
