"""AWD-LSTM pieces: weight-drop, locked and embedding dropout, the LM, the classifier, gradual unfreezing."""
import numpy as np
import pytest
import torch

from harness.models.awd_lstm import (
    LM_DROPS, AWDLSTM, LanguageModel, LockedDropout, PoolingClassifier, WeightDropLSTM,
    embedding_dropout, lm_loss, sample_next)
from harness.text.batches import LMLoader, SortedBucketLoader
from harness.text.callbacks import ARTARCallback
from harness.text.ulmfit import discriminative_lrs, gradual_unfreezing, load_lm_file, load_pretrained_into, save_lm
from harness.errors import HarnessError
from harness.train import Learner


def tiny_encoder(vocab=30):
    drops = {k: v for k, v in LM_DROPS.items() if k != "output_p"}
    return AWDLSTM(vocab, emb_sz=8, n_hid=12, n_layers=2, pad_idx=1, **drops)


def test_weight_drop_changes_hidden_weights_in_training_only():
    torch.manual_seed(0)
    layer = WeightDropLSTM(4, 5, weight_p=0.5)
    x = torch.randn(3, 6, 4)
    layer.train()
    a, _ = layer(x)
    b, _ = layer(x)
    assert not torch.allclose(a, b)  # a fresh DropConnect mask on every call
    layer.eval()
    c, _ = layer(x)
    d, _ = layer(x)
    plain, _ = layer.lstm(x)
    assert torch.equal(c, d) and torch.allclose(c, plain)  # evaluation uses the full weights
    # Gradients still reach the raw hidden-to-hidden weights through the mask.
    layer.train()
    layer(x)[0].sum().backward()
    assert layer.lstm.weight_hh_l0.grad is not None and layer.lstm.weight_hh_l0.grad.abs().sum() > 0


def test_locked_dropout_shares_one_mask_across_time():
    torch.manual_seed(0)
    drop = LockedDropout(0.5).train()
    out = drop(torch.ones(4, 7, 10))
    assert torch.equal(out, out[:, :1].expand_as(out))  # the same mask at every time step
    assert (out == 0).any() and (out == 2).any()
    assert torch.equal(drop.eval()(torch.ones(4, 7, 10)), torch.ones(4, 7, 10))


def test_embedding_dropout_drops_whole_words():
    torch.manual_seed(1)
    emb = torch.nn.Embedding(50, 6)
    words = torch.arange(50).repeat(2, 1)
    out = embedding_dropout(emb, words, 0.5, training=True)
    zero = (out == 0).all(-1)
    assert zero.any() and torch.equal(zero[0], zero[1])  # a dropped word is dropped wherever it appears
    assert torch.equal(embedding_dropout(emb, words, 0.5, training=False), emb(words))


def test_language_model_ties_weights_and_carries_state():
    torch.manual_seed(0)
    lm = LanguageModel(tiny_encoder(), output_p=0.1)
    assert lm.decoder.weight is lm.encoder.embedding.weight
    names = {id(p) for g in lm.layer_groups() for p in g}
    assert len(names) == len(list(lm.parameters()))  # every parameter in exactly one group
    lm.eval()
    x = torch.randint(0, 30, (2, 10))
    whole = lm(x)
    lm.reset()
    first, second = lm(x[:, :4]), lm(x[:, 4:])
    assert whole.shape == (2, 10, 30)
    assert torch.allclose(torch.cat([first, second], 1), whole, atol=1e-5)  # state carried across batches
    lm.reset()
    assert not torch.allclose(lm(x[:, 4:]), second)


def test_ar_tar_add_exactly_alpha_mean_square_and_beta_mean_step_change():
    """The penalties against a fixed computation: the same dropout draws (same seed), AR on the
    dropped-out last-layer outputs, TAR on the raw ones."""
    torch.manual_seed(0)
    lm = LanguageModel(tiny_encoder(), output_p=0.5)
    docs = [np.random.default_rng(0).integers(0, 30, 400)]
    learn = Learner(lm, LMLoader(docs, bs=2, bptt=10), None, lm_loss, callbacks=[ARTARCallback(alpha=2.0, beta=1.0)])
    x, y = next(iter(learn.train_dl))
    lm.train()
    lm.reset()
    torch.manual_seed(1)
    with torch.no_grad():
        pred = lm(x)
        dropped, raw = lm.output.clone(), lm.raw_output.clone()
        plain = lm_loss(pred, y).item()
    assert not torch.allclose(dropped, raw)  # the two penalties read different activations
    expected = plain + 2.0 * dropped.pow(2).mean().item() + 1.0 * (raw[:, 1:] - raw[:, :-1]).pow(2).mean().item()
    lm.reset()
    torch.manual_seed(1)
    learn.train_step(x, y)
    assert learn.loss_value == pytest.approx(expected, rel=1e-5)
    assert learn.loss_value > plain + 1e-3  # and they are not negligible here


def test_classifier_reads_long_documents_in_pieces_with_state():
    torch.manual_seed(0)
    enc = tiny_encoder()
    clf = PoolingClassifier(enc, bptt=4, pad_idx=1).eval()
    words = torch.randint(2, 30, (3, 11))
    pieces, start, lengths = clf.encode(words)
    _, outputs, _ = enc(words)
    assert torch.allclose(pieces, outputs[-1], atol=1e-5)  # reading 4 at a time = reading it whole
    assert start.tolist() == [0, 0, 0] and lengths.tolist() == [11, 11, 11]
    assert clf(words).shape == (3,)


def test_classifier_lays_each_document_out_on_a_bptt_boundary():
    clf = PoolingClassifier(tiny_encoder(), bptt=4, pad_idx=1)
    words = torch.tensor([[1, 1, 1, 5, 6, 7], [8, 9, 10, 11, 12, 13], [14, 15, 1, 1, 1, 1]])
    laid, start, lengths = clf.layout(words)
    # Whole pieces of padding first, the rest after: every document starts on a multiple of bptt.
    assert laid.tolist() == [[5, 6, 7, 1, 1, 1], [8, 9, 10, 11, 12, 13], [1, 1, 1, 1, 14, 15]]
    assert start.tolist() == [0, 0, 4] and lengths.tolist() == [3, 6, 2]
    laid, start, _ = PoolingClassifier(tiny_encoder(), bptt=2, pad_idx=1).layout(words)
    assert laid[0].tolist() == [1, 1, 5, 6, 7, 1] and start.tolist() == [2, 0, 4]


def _review_logits(clf, reviews):
    width = max(len(r) for r in reviews)
    batch = torch.ones(len(reviews), width, dtype=torch.long)  # pad_idx = 1, padded at the start
    for i, r in enumerate(reviews):
        batch[i, width - len(r):] = torch.tensor(r)
    return clf(batch)


def test_review_logit_alone_equals_its_logit_beside_a_much_longer_review():
    torch.manual_seed(0)
    clf = PoolingClassifier(tiny_encoder(), bptt=5, pad_idx=1, max_len=10)
    with torch.no_grad():  # running statistics that are not the identity, so BatchNorm matters
        for bn in (clf.head[0], clf.head[4]):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    clf.eval()
    rng = np.random.default_rng(0)
    short = rng.integers(2, 30, 7).tolist()
    longer = rng.integers(2, 30, 63).tolist()
    middle = rng.integers(2, 30, 23).tolist()
    with torch.no_grad():
        alone = _review_logits(clf, [short])
        batched = _review_logits(clf, [longer, short, middle])
        middle_alone = _review_logits(clf, [middle])
    assert torch.allclose(batched[1], alone[0], atol=1e-5)
    assert torch.allclose(batched[2], middle_alone[0], atol=1e-5)
    # The padding itself is ignored, not just small: the logit is not that of the padded row read as text.
    padded = torch.tensor([[1] * 56 + short])
    _, outputs, _ = clf.encoder(padded)
    assert not torch.allclose(clf.head(torch.cat([outputs[-1][:, -1], outputs[-1].max(1).values,
                                                   outputs[-1].mean(1)], 1)).squeeze(1), alone, atol=1e-3)


def test_classifier_gradients_reach_only_the_last_max_len_tokens():
    torch.manual_seed(0)
    vocab = 200
    clf = PoolingClassifier(AWDLSTM(vocab, 8, 12, 2, pad_idx=1, hidden_p=0, input_p=0, embed_p=0, weight_p=0),
                            bptt=5, pad_idx=1, max_len=10)
    clf.eval()  # deterministic; gradients still flow
    early = list(range(100, 140))  # 40 tokens read without gradients
    late = list(range(2, 12))  # the last 10 = max_len tokens
    other = list(range(150, 163))  # a shorter review in the same batch
    logits = _review_logits(clf, [early + late, other])
    logits[0].backward()
    grad = clf.encoder.embedding.weight.grad
    assert (grad[early] == 0).all()
    assert (grad[late].abs().sum(1) > 0).all()
    assert (grad[other] == 0).all()  # another review's tokens do not feed this one's logit
    # Without the limit, the early tokens get gradients too (so the test above can fail).
    clf.zero_grad()
    clf.max_len = 1000
    _review_logits(clf, [early + late, other])[0].backward()
    assert (clf.encoder.embedding.weight.grad[early].abs().sum(1) > 0).all()


def test_gradual_unfreezing_moves_only_unfrozen_groups():
    torch.manual_seed(0)
    clf = PoolingClassifier(tiny_encoder(), bptt=5, pad_idx=1)
    docs = [np.random.default_rng(i).integers(2, 30, 12) for i in range(16)]
    labels = np.arange(16) % 2
    learn = Learner(clf, SortedBucketLoader(docs, labels, bs=8, shuffle=True), None,
                    torch.nn.BCEWithLogitsLoss(), layer_groups=clf.layer_groups())
    groups = learn.layer_groups
    assert len(groups) == 4  # embedding, 2 LSTM layers, head

    def snapshot():
        return [[p.detach().clone() for p in g] for g in groups]

    def moved(before):
        return [any(not torch.equal(a, p) for a, p in zip(b, g)) for b, g in zip(before, groups)]

    before = snapshot()
    gradual_unfreezing(learn, [{"freeze_to": -1}], lr=0.01, epochs=1, lr_div=2.6)
    assert moved(before) == [False, False, False, True]
    before = snapshot()
    gradual_unfreezing(learn, [{"freeze_to": -2, "lr_mult": 0.5}], lr=0.01, epochs=1, lr_div=2.6)
    assert moved(before) == [False, False, True, True]
    # One-cycle ends each group at its own rate: each group lr_div times slower than the one above.
    lrs = [g["lr"] for g in learn.opt.param_groups]
    assert np.allclose([hi / lo for lo, hi in zip(lrs, lrs[1:])], 2.6)
    before = snapshot()
    gradual_unfreezing(learn, [{"freeze_to": 0}], lr=0.01, epochs=1, lr_div=2.6, schedule="constant")
    assert moved(before) == [True, True, True, True]
    assert np.allclose([g["lr"] for g in learn.opt.param_groups], discriminative_lrs(0.01, 4, 2.6))
    with pytest.raises(HarnessError, match="stages"):
        gradual_unfreezing(learn, [{"unfreeze": 1}], lr=0.01, epochs=1, lr_div=2.6)


def test_discriminative_rates():
    assert np.allclose(discriminative_lrs(1.0, 3, 2.0), [0.25, 0.5, 1.0])


def test_saved_lm_loads_into_a_different_vocabulary(tmp_path):
    torch.manual_seed(0)
    itos = ["xxunk", "xxpad", "xxbos"] + [f"w{i}" for i in range(27)]
    lm = LanguageModel(tiny_encoder())
    save_lm(tmp_path / "lm.pt", lm, itos)
    new_itos = ["xxunk", "xxpad", "xxbos", "w5", "new"] + [f"w{i}" for i in range(20, 45)]
    other = LanguageModel(tiny_encoder(vocab=len(new_itos)))
    known = load_pretrained_into(other, load_lm_file(tmp_path / "lm.pt"), new_itos)
    assert known == 3 + 1 + 7  # the specials, w5, w20..w26
    old_emb, new_emb = lm.encoder.embedding.weight, other.encoder.embedding.weight
    assert torch.equal(new_emb[3], old_emb[itos.index("w5")])
    assert torch.allclose(new_emb[4], old_emb.mean(0))  # a new word starts at the mean embedding
    assert torch.equal(other.encoder.rnns[1].lstm.weight_hh_l0, lm.encoder.rnns[1].lstm.weight_hh_l0)
    with pytest.raises(HarnessError, match="does not exist"):
        load_lm_file(tmp_path / "missing.pt")
    bigger = LanguageModel(AWDLSTM(len(new_itos), 8, 16, 2, 1))
    with pytest.raises(HarnessError, match="sizes"):
        load_pretrained_into(bigger, load_lm_file(tmp_path / "lm.pt"), new_itos)


def test_sampling_temperature_and_top_k():
    logits = torch.tensor([0.0, 1.0, 5.0, 2.0])
    g = torch.Generator().manual_seed(0)
    assert sample_next(logits, temperature=0) == 2
    assert {sample_next(logits, 1.0, top_k=2, generator=g) for _ in range(200)} <= {2, 3}
    assert sample_next(logits, temperature=0, banned=[2]) == 3


# The state-dict keys of fast.ai's AWD-LSTM language models, written out from their source (fastai
# 0.7: old/fastai/lm_rnn.py RNN_Encoder + LinearDecoder(bias=False), rnn_reg.py WeightDrop, which
# re-registers weight_hh_l0 on the LSTM as weight_hh_l0_raw; v1: fastai/text/models/awd_lstm.py,
# WeightDropout registers weight_hh_l0_raw on itself and keeps module.weight_hh_l0 in _parameters;
# v2: awdlstm.py, the same without module.weight_hh_l0), with their shapes for a tiny model of
# vocabulary 30, emb_sz 8, n_hid 12 and 3 layers (the real files: 400, 1150 or 1152, 3).
def _lstm_keys(raw_name):
    shapes = [((48, 8), (48, 12)), ((48, 12), (48, 12)), ((32, 12), (32, 8))]
    keys = {}
    for i, (ih, hh) in enumerate(shapes):
        keys[f"0.rnns.{i}.module.weight_ih_l0"] = ih
        keys[f"0.rnns.{i}.module.bias_ih_l0"] = (ih[0],)
        keys[f"0.rnns.{i}.module.bias_hh_l0"] = (ih[0],)
        keys[f"0.rnns.{i}.{raw_name}"] = hh
    return keys


FASTAI_07_KEYS = {"0.encoder.weight": (30, 8), "0.encoder_with_dropout.embed.weight": (30, 8),
                  **_lstm_keys("module.weight_hh_l0_raw"), "1.decoder.weight": (30, 8)}
FASTAI_V2_KEYS = {"0.encoder.weight": (30, 8), "0.encoder_dp.emb.weight": (30, 8),
                  **_lstm_keys("weight_hh_l0_raw"), "1.decoder.weight": (30, 8), "1.decoder.bias": (30,)}
FASTAI_V1_KEYS = {**FASTAI_V2_KEYS, **{f"0.rnns.{i}.module.weight_hh_l0": s
                                       for i, s in enumerate([(48, 12), (48, 12), (32, 8)])}}


def _write_fastai(tmp_path, keys, name, itos):
    import pickle

    gen = torch.Generator().manual_seed(0)
    state = {k: torch.randn(shape, generator=gen) for k, shape in keys.items()}
    for k in keys:
        if k.endswith("module.weight_hh_l0"):
            state[k] = torch.zeros(keys[k])  # v1's dropped-out copy: must not be what is loaded
    state["0.encoder_with_dropout.embed.weight" if "0.encoder_with_dropout.embed.weight" in keys
          else "0.encoder_dp.emb.weight"] = state["0.encoder.weight"]
    state["1.decoder.weight"] = state["0.encoder.weight"]  # tied
    torch.save(state, tmp_path / name)
    with open(tmp_path / "itos_wt103.pkl", "wb") as f:
        pickle.dump(itos, f)
    return state


@pytest.mark.parametrize("keys,name", [(FASTAI_07_KEYS, "fwd_wt103.h5"), (FASTAI_V1_KEYS, "lstm_wt103.pth"),
                                       (FASTAI_V2_KEYS, "lstm_wt103.pth")], ids=["fastai-0.7", "fastai-v1", "fastai-v2"])
def test_fastai_weights_with_their_real_key_names_load(tmp_path, keys, name):
    itos = ["xxunk", "xxpad", "xxbos"] + [f"w{i}" for i in range(27)]
    state = _write_fastai(tmp_path, keys, name, itos)
    blob = load_lm_file(tmp_path / name)
    assert blob["dims"] == {"emb_sz": 8, "n_hid": 12, "n_layers": 3}
    target = LanguageModel(AWDLSTM(30, 8, 12, 3, pad_idx=1))
    assert load_pretrained_into(target, blob, itos) == len(itos)
    raw = "module.weight_hh_l0_raw" if name.endswith(".h5") else "weight_hh_l0_raw"
    assert torch.equal(target.encoder.embedding.weight, state["0.encoder.weight"])
    for i, rnn in enumerate(target.encoder.rnns):
        assert torch.equal(rnn.lstm.weight_hh_l0, state[f"0.rnns.{i}.{raw}"])
        assert torch.equal(rnn.lstm.weight_ih_l0, state[f"0.rnns.{i}.module.weight_ih_l0"])
        assert torch.equal(rnn.lstm.bias_hh_l0, state[f"0.rnns.{i}.module.bias_hh_l0"])
    expected_bias = state.get("1.decoder.bias", torch.zeros(30))  # 0.7's decoder has no bias
    assert torch.equal(target.decoder.bias, expected_bias)
    target.eval()
    assert torch.isfinite(target(torch.randint(0, 30, (2, 5)))).all()


def test_fastai_weights_of_another_model_say_which_key(tmp_path):
    itos = ["xxunk", "xxpad", "xxbos"] + [f"w{i}" for i in range(27)]
    state = _write_fastai(tmp_path, FASTAI_V2_KEYS, "lstm_wt103.pth", itos)
    state["1.layers.0.weight"] = torch.zeros(3, 3)  # a classifier head
    torch.save(state, tmp_path / "lstm_wt103.pth")
    with pytest.raises(HarnessError, match=r"unexpected key '1.layers.0.weight'"):
        load_lm_file(tmp_path / "lstm_wt103.pth")


def test_wt103_sizes_are_named_and_a_mismatch_names_the_size_to_set(tmp_path):
    from harness.models.awd_lstm import SIZES

    assert SIZES["ulmfit"] == {"emb_sz": 400, "n_hid": 1150, "n_layers": 3}  # fast.ai 0.7's fwd_wt103.h5
    assert SIZES["ulmfit-v1"]["n_hid"] == 1152  # fastai v1/v2's awd_lstm_lm_config
    blob = {"itos": ["xxunk", "xxpad"], "dims": {"emb_sz": 400, "n_hid": 1150, "n_layers": 3}, "model": {}}
    with pytest.raises(HarnessError, match='set model.size = "ulmfit"'):
        load_pretrained_into(LanguageModel(tiny_encoder()), blob, ["xxunk", "xxpad"])


def test_itos_is_read_only_from_the_named_file_and_only_as_a_list_of_strings(tmp_path):
    import os
    import pickle

    itos = ["xxunk", "xxpad", "xxbos"] + [f"w{i}" for i in range(27)]
    _write_fastai(tmp_path, FASTAI_V2_KEYS, "lstm_wt103.pth", itos)
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    # A file that sorts before itos_wt103.pkl is never opened.
    (tmp_path / "itos_aaa.pkl").write_bytes(pickle.dumps(Exploit()))
    assert load_lm_file(tmp_path / "lstm_wt103.pth")["itos"] == itos
    # Named explicitly, it is refused without running anything.
    with pytest.raises(HarnessError, match=r"itos_aaa.pkl is not a pickled list of strings"):
        load_lm_file(tmp_path / "lstm_wt103.pth", tmp_path / "itos_aaa.pkl")
    assert not marker.exists()
    (tmp_path / "itos_dict.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(HarnessError, match=r"itos_dict.pkl must hold a non-empty list of strings"):
        load_lm_file(tmp_path / "lstm_wt103.pth", tmp_path / "itos_dict.pkl")
    (tmp_path / "itos_short.pkl").write_bytes(pickle.dumps(itos[:5]))
    with pytest.raises(HarnessError, match=r"lists 5 tokens but .* embeds 30"):
        load_lm_file(tmp_path / "lstm_wt103.pth", tmp_path / "itos_short.pkl")
    (tmp_path / "itos_wt103.pkl").unlink()
    with pytest.raises(HarnessError, match=r"itos_wt103.pkl is missing"):
        load_lm_file(tmp_path / "lstm_wt103.pth")


def test_generation_never_samples_special_tokens_even_when_they_score_highest():
    from harness.text.tokenizer import SPECIAL_TOKENS
    from harness.text.ulmfit import generate

    torch.manual_seed(0)
    itos = list(SPECIAL_TOKENS) + ["xxfld"] + [f"w{i}" for i in range(21)]
    lm = LanguageModel(tiny_encoder(vocab=len(itos)), output_p=0.0)
    with torch.no_grad():
        lm.decoder.bias[: len(SPECIAL_TOKENS) + 1] = 50.0  # xxmaj, xxrep ... would win every draw
    lm.eval()
    assert itos[sample_next(lm.next_logits(torch.tensor([[9]]))[0])] in itos[:9]  # unmasked: a special wins
    for temperature in (0.0, 1.0):
        words = generate(lm, itos, ["xxbos", "w3"], n_words=20, temperature=temperature, seed=1)
        assert len(words) == 20 and all(w.startswith("w") for w in words), words


def test_adaptive_softmax_language_model():
    torch.manual_seed(0)
    lm = LanguageModel(tiny_encoder(vocab=40), output_p=0.1, adaptive_cutoffs=[10])
    groups = lm.layer_groups()
    assert len({id(p) for g in groups for p in g}) == len(list(lm.parameters()))
    x = torch.randint(0, 40, (2, 9))
    y = torch.randint(0, 40, (2, 9))
    hidden = lm(x)
    assert hidden.shape == (2, 9, 8)
    loss = lm.loss(hidden, y)
    assert 0 < loss.item() < 10
    lm.eval()
    lm.reset()
    logp = lm.next_logits(x)
    assert logp.shape == (2, 40) and torch.allclose(logp.exp().sum(1), torch.ones(2), atol=1e-4)
    # The adaptive loss is the same cross-entropy as the log-probabilities it implies.
    lm.reset()
    h = lm(x)
    full = lm.decoder.log_prob(h.reshape(-1, 8))
    assert torch.allclose(lm.loss(h, y), -full.gather(1, y.reshape(-1, 1)).mean(), atol=1e-5)
