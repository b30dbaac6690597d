"""The shared text pieces: tokenizer rules, vocabulary, token cache, language-model and classifier batches."""
from collections import Counter

import numpy as np
import pytest
import torch

from harness.text.batches import LMLoader, SortedBucketLoader
from harness.text.cache import TokenizedTexts, tokenize_cached
from harness.text.tokenizer import BOS, PAD, TK_MAJ, TK_REP, TK_UP, TK_WREP, UNK, Tokenizer, detokenize
from harness.text.vocab import Vocab


@pytest.fixture(scope="module")
def tok():
    return Tokenizer()


# ---------------------------------------------------------------------- tokenizer rules
def test_case_markers_lowercase_everything(tok):
    assert tok("The movie was GREAT fun") == [BOS, TK_MAJ, "the", "movie", "was", TK_UP, "great", "fun"]
    # A single capital letter is capitalised, not all caps.
    assert tok("I liked it")[:3] == [BOS, TK_MAJ, "i"]


def test_character_and_word_repetition(tok):
    assert tok("soooooo good!!!!") == [BOS, "s", TK_REP, "6", "o", "good", TK_REP, "4", "!"]
    assert tok("bad bad bad bad movie") == [BOS, TK_WREP, "4", "bad", "movie"]
    assert tok("bad bad movie") == [BOS, "bad", "bad", "movie"]  # two in a row is not a repetition
    assert tok("Very very VERY good")[:4] == [BOS, TK_WREP, "3", TK_MAJ]


def test_html_leftovers(tok):
    assert tok("Good.<br /><br />Bad.") == [BOS, TK_MAJ, "good", ".", "\n", TK_MAJ, "bad", "."]
    assert tok("It&#39;s <i>fine</i> &amp; fun") == [BOS, TK_MAJ, "it", "'s", "fine", "&", "fun"]
    assert tok('He said \\"no\\"') == [BOS, TK_MAJ, "he", "said", '"', "no", '"']


def test_spacy_splits_contractions_and_punctuation(tok):
    assert tok("I don't know, really.") == [BOS, TK_MAJ, "i", "do", "n't", "know", ",", "really", "."]


def test_empty_text_is_just_bos(tok):
    assert tok("") == [BOS]
    assert tok("   <br />  ") in ([BOS], [BOS, "\n"])


def test_detokenize_restores_readable_text(tok):
    text = "The movie was GREAT. I don't know, really."
    assert detokenize(tok(text)) == "The movie was GREAT. I don't know, really."
    assert detokenize(tok("NO NO NO way")) == "NO NO NO way"


def test_detokenize_turns_markers_back_into_text():
    assert detokenize([BOS, TK_MAJ, "the", TK_UP, "end"]) == "The END"
    assert detokenize([BOS, "s", TK_REP, "5", "o", "good", TK_REP, "4", "!"]) == "sooooo good!!!!"
    assert detokenize([TK_WREP, "3", TK_MAJ, "very", "good"]) == "Very very very good"
    assert detokenize([TK_WREP, "3", TK_UP, "no"]) == "NO NO NO"
    # Markers with nothing to apply to, and control tokens, are left out rather than printed.
    assert detokenize(["good", TK_REP, TK_MAJ, TK_MAJ, "fun", UNK, PAD, "xxfld", TK_WREP, "2"]) == "good Fun"


def test_tokenize_many_matches_one_by_one(tok):
    texts = ["One review.", "ANOTHER one!!!!", ""]
    assert tok.tokenize(texts, progress=False) == [tok(t) for t in texts]


# ---------------------------------------------------------------------- vocabulary
def test_vocab_specials_order_frequency_and_limits():
    docs = [["b", "a", "a", "c"], ["a", "b", "d"], ["b"]]
    vocab = Vocab.build(docs, max_vocab=11, min_freq=2)
    assert vocab.itos[:3] == [UNK, PAD, BOS]
    words = vocab.itos[8:]
    assert words == ["a", "b"]  # a and b seen 3 times (tie broken alphabetically); c, d once: dropped
    assert vocab.numericalize(["a", "zzz", "b"]).tolist() == [vocab.stoi["a"], vocab.unk, vocab.stoi["b"]]
    small = Vocab.build(Counter({"x": 5, "y": 4, "z": 3}), max_vocab=9, min_freq=1)
    assert small.itos[8:] == ["x"]  # max_vocab counts the special tokens too
    assert Vocab(vocab.state()).itos == vocab.itos  # round trip through the saved state


def test_vocab_lookup_maps_another_token_list():
    vocab = Vocab.build(Counter({"good": 3, "bad": 3}), min_freq=1)
    lookup = vocab.lookup_from(["bad", "unseen", "good"])
    assert lookup.tolist() == [vocab.stoi["bad"], vocab.unk, vocab.stoi["good"]]


# ---------------------------------------------------------------------- cache
def test_cache_hits_for_same_texts_and_misses_for_changed_settings(tmp_path, tok):
    texts = ["A good film.", "A BAD film!!!!"]
    first = tokenize_cached(texts, tok, tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    assert [first.tokens(i) for i in range(2)] == [tok(t) for t in texts]

    class Exploding(Tokenizer):
        def tokenize(self, *args, **kwargs):
            raise AssertionError("should have come from the cache")

    exploding = Exploding()
    second = tokenize_cached(texts, exploding, tmp_path, progress=False)
    assert second.ids.tolist() == first.ids.tolist() and second.itos == first.itos
    # Other texts, or other settings, miss the cache.
    tokenize_cached(texts + ["more"], tok, tmp_path, progress=False)
    no_bos = Tokenizer(bos=False)
    assert tokenize_cached(texts, no_bos, tmp_path, progress=False).tokens(0)[0] != BOS
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_tokenized_texts_subset():
    corpus = TokenizedTexts.from_tokens([["a", "b"], ["c"], ["a", "c", "d"]])
    sub = corpus.subset([2, 0])
    assert [sub.tokens(i) for i in range(2)] == [["a", "c", "d"], ["a", "b"]]
    assert sub.lengths().tolist() == [3, 2]


# ---------------------------------------------------------------------- language-model batches
def _lm_docs():
    return [np.arange(i * 100, i * 100 + 100) for i in range(10)]  # 1,000 distinct tokens


def test_lm_batches_shapes_shift_and_continuity():
    dl = LMLoader(_lm_docs(), bs=4, bptt=10, shuffle=False)
    batches = list(dl)
    assert len(batches) == len(dl)
    for x, y in batches:
        assert x.shape == y.shape and x.shape[0] == 4
        assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one
    for (x0, y0), (x1, _) in zip(batches, batches[1:]):
        assert torch.equal(x1[:, 0], y0[:, -1])  # each row continues where it stopped
    # Row r reads the r-th quarter of the concatenated corpus.
    stream = np.concatenate(_lm_docs())
    assert batches[0][0][1, 0].item() == stream[250]
    assert sum(x.shape[1] for x, _ in batches) == 249


def test_lm_batches_vary_length_but_keep_their_count():
    dl = LMLoader(_lm_docs() * 5, bs=2, bptt=20, shuffle=True, seed=1)
    lens = [x.shape[1] for x, _ in dl]
    assert len(set(lens)) > 3 and min(lens) >= 3
    assert abs(np.mean(lens) - 20) < 4
    first = [x.clone() for x, _ in dl]
    assert not all(torch.equal(a, b) for a, b in zip(first, [x for x, _ in dl]))  # new document order each epoch


def test_lm_batches_keep_their_count_every_epoch_on_a_200k_token_stream():
    rng = np.random.default_rng(0)
    docs = [np.arange(n) for n in rng.integers(50, 800, 400)]  # ragged documents
    docs.append(np.arange(200_000 - sum(len(d) for d in docs)))
    dl = LMLoader(docs, bs=16, bptt=70, shuffle=True, seed=0)
    assert dl.n_tokens == 200_000 and dl.row_len == 12_500
    for _ in range(50):
        lens = dl.seq_lens()
        assert len(lens) == len(dl) and min(lens) >= 1
        assert sum(lens) == dl.row_len - 1  # every row read to its end: nothing dropped but the remainder
    assert sum(1 for _ in dl) == len(dl)
    # A stream that does not divide by bs loses only its remainder (fewer than bs tokens).
    odd = LMLoader(docs, bs=16, bptt=70, shuffle=True, seed=0, max_tokens=199_997)
    assert odd.n_tokens == 199_984 and sum(x.shape[1] for x, _ in odd) == odd.row_len - 1


def test_lm_batches_cover_each_row_exactly_once():
    dl = LMLoader(_lm_docs(), bs=3, bptt=7, shuffle=True, seed=2)
    batches = list(dl)
    xs, ys = [x for x, _ in batches], [y for _, y in batches]
    assert len(xs) == len(dl)
    stream = torch.cat(xs, 1)
    assert stream.shape == (3, dl.row_len - 1)
    assert torch.equal(torch.cat(ys, 1)[:, :-1], stream[:, 1:])


def test_lm_loader_state_restores_order():
    dl = LMLoader(_lm_docs(), bs=2, bptt=10, shuffle=True, seed=3)
    state = dl.state_dict()
    a = [x for x, _ in dl]
    dl.load_state_dict(state)
    assert all(torch.equal(p, q) for p, q in zip(a, [x for x, _ in dl]))


# ---------------------------------------------------------------------- classifier batches
def test_sorted_buckets_pad_first_and_group_lengths():
    rng = np.random.default_rng(0)
    docs = [np.arange(2, 2 + n) for n in rng.integers(1, 60, size=200)]
    labels = rng.integers(0, 2, size=200)
    dl = SortedBucketLoader(docs, labels, bs=16, pad_idx=1, shuffle=True, seed=0)
    seen = []
    widths = []
    for x, y in dl:
        widths.append(x.shape[1])
        for row in range(x.shape[0]):
            n = int((x[row] != 1).sum())
            assert (x[row, x.shape[1] - n:] != 1).all()  # padding only at the start
        seen.append(len(y))
    assert sum(seen) == 200 and len(seen) == len(dl)
    assert widths[0] == max(widths)  # the longest batch first
    # Similar lengths together: far less padding than random batches would need.
    pad = sum((x == 1).sum().item() for x, _ in dl)
    assert pad < 0.2 * sum(len(d) for d in docs)


def test_sorted_buckets_drop_a_last_training_batch_of_one():
    docs = [np.arange(2, 2 + n) for n in range(1, 34)]  # 33 documents, batches of 16: 16, 16, 1
    train = SortedBucketLoader(docs, np.arange(33) % 2, bs=16, shuffle=True, seed=0)
    sizes = [len(y) for _, y in train]
    assert len(train) == 2 and sorted(sizes) == [16, 16]
    valid = SortedBucketLoader(docs, np.arange(33) % 2, bs=16, shuffle=False)
    assert [len(y) for _, y in valid] == [16, 16, 1] and len(valid) == 3  # validation keeps every review
    two_left = SortedBucketLoader(docs[:34 - 16], None, bs=16, shuffle=True)  # 18 documents: 16 + 2
    assert sorted(len(y) for _, y in two_left) == [2, 16]


def test_sorted_buckets_truncate_and_order_maps_back():
    docs = [np.arange(2, 2 + n) for n in (5, 50, 20)]
    dl = SortedBucketLoader(docs, None, bs=2, pad_idx=1, shuffle=False, max_len=30)
    assert dl.order.tolist() == [1, 2, 0]
    x, _ = next(iter(dl))
    assert x.shape[1] == 30 and x[0].tolist() == list(range(2, 32))  # the first max_len tokens
