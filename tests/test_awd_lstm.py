"""AWD-LSTM pieces: weight-drop, locked and embedding dropout, the LM, the classifier, gradual unfreezing."""
import numpy as np
import pytest
import torch

from harness.models.awd_lstm import (
    LM_DROPS, ARTARCallback, AWDLSTM, LanguageModel, LockedDropout, PoolingClassifier, ResetState, WeightDropLSTM,
    embedding_dropout, lm_loss, sample_next)
from harness.text.batches import LMLoader, SortedBucketLoader
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


def test_ar_tar_add_to_the_loss_in_training():
    torch.manual_seed(0)
    lm = LanguageModel(tiny_encoder(), output_p=0.0)
    docs = [np.random.default_rng(0).integers(0, 30, 400)]
    learn = Learner(lm, LMLoader(docs, bs=2, bptt=10), None, lm_loss, callbacks=[ResetState()])
    x, y = next(iter(learn.train_dl))
    learn.model.train()
    plain = lm_loss(learn.model(x), y).item()
    learn.add_callbacks([ARTARCallback(alpha=2.0, beta=1.0)])
    learn.model.reset()
    torch.manual_seed(0)
    learn.train_step(x, y)
    assert learn.loss_value > plain


def test_classifier_reads_long_documents_in_pieces_with_state():
    torch.manual_seed(0)
    enc = tiny_encoder()
    clf = PoolingClassifier(enc, bptt=4, pad_idx=1).eval()
    words = torch.randint(2, 30, (3, 11))
    words[0, :5] = 1  # padding first
    pieces = clf.encode(words)
    _, outputs, _ = enc(words)
    assert torch.allclose(pieces, outputs[-1], atol=1e-5)  # reading 4 at a time = reading it whole
    assert clf(words).shape == (3,)


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
    assert [g["lr"] for g in learn.opt.param_groups] != []
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


def test_fastai_awd_lstm_weights_convert(tmp_path):
    """fast.ai v1's key names (0.encoder.weight, 0.rnns.i.weight_hh_l0_raw, 0.rnns.i.module.*, 1.decoder.*)."""
    import pickle

    torch.manual_seed(0)
    itos = ["xxunk", "xxpad", "xxbos"] + [f"w{i}" for i in range(27)]
    source = LanguageModel(tiny_encoder())
    fastai = {"0.encoder.weight": source.encoder.embedding.weight.detach().clone(),
              "0.encoder_dp.emb.weight": source.encoder.embedding.weight.detach().clone(),
              "1.decoder.weight": source.decoder.weight.detach().clone(),
              "1.decoder.bias": source.decoder.bias.detach().clone() + 1.0}
    for i, rnn in enumerate(source.encoder.rnns):
        for name, p in rnn.lstm.named_parameters():
            fastai[f"0.rnns.{i}.module.{name}"] = p.detach().clone()
        fastai[f"0.rnns.{i}.weight_hh_l0_raw"] = rnn.lstm.weight_hh_l0.detach().clone()
    torch.save(fastai, tmp_path / "lstm_wt103.pth")
    with open(tmp_path / "itos_wt103.pkl", "wb") as f:
        pickle.dump(itos, f)
    blob = load_lm_file(tmp_path / "lstm_wt103.pth")
    assert blob["dims"] == {"emb_sz": 8, "n_hid": 12, "n_layers": 2}
    target = LanguageModel(tiny_encoder())
    assert load_pretrained_into(target, blob, itos) == len(itos)
    for (name, a), (_, b) in zip(source.state_dict().items(), target.state_dict().items()):
        if name == "decoder.bias":
            assert torch.allclose(b, a + 1.0)
        else:
            assert torch.equal(a, b), name


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
