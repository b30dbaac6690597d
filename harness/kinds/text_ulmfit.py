"""The text-classification kind's ULMFiT route (moved from the IMDB plugin, unchanged in what it computes):
tokens and vocabulary, the language-model stage, the classifier with gradual unfreezing, text generation.
It imports torch, so ``harness.kinds.text`` imports it only where a model is made or trained."""
from __future__ import annotations

import time

import click
import numpy as np
import pandas as pd

from harness.host.competition import Prepared
from harness.errors import HarnessError
from harness.models.awd_lstm import CLAS_DROPS, LM_DROPS, LanguageModel, PoolingClassifier, encoder_from_config
from harness.text.batches import LMLoader, SortedBucketLoader
from harness.text.vocab import Vocab
from harness.train.callbacks import Callback


def _counts(corpus) -> dict:
    counts = np.bincount(corpus.ids, minlength=len(corpus.itos))
    return {tok: int(n) for tok, n in zip(corpus.itos, counts) if n}


def _docs(corpus, vocab: Vocab) -> list[np.ndarray]:
    lookup = vocab.lookup_from(corpus.itos)
    ids = lookup[corpus.ids]
    return [ids[corpus.offsets[i]:corpus.offsets[i + 1]] for i in range(len(corpus))]


def prepare_text(comp, raw, state: dict, extra: dict, config: dict) -> Prepared:
    """Tokenize (cached), build the vocabulary from all language-model text, and make the loaders."""
    from collections import Counter

    d, t = config["data"], config["text"]
    train, valid = extra["train"], extra["valid"]
    noun = comp.noun
    labelled = comp.tokenize(pd.concat([train["text"], valid["text"]]), config, desc=f"tokenizing labelled {noun}s")
    lm_parts = [labelled]
    if d["lm_test"] and raw.test is not None:
        lm_parts.append(comp.tokenize(raw.test["text"], config, desc=f"tokenizing test {noun}s"))
    if d["lm_unsup"] and raw.unsup:
        lm_parts.append(comp.tokenize(raw.unsup, config, desc=f"tokenizing unlabelled {noun}s"))
    counts = Counter()
    for part in lm_parts:
        counts.update(_counts(part))
    vocab = Vocab.build(counts, max_vocab=t["max_vocab"], min_freq=t["min_freq"])
    state["itos"] = vocab.itos

    lm_docs = [doc for part in lm_parts for doc in _docs(part, vocab)]
    rng = np.random.default_rng(config.get("seed", 0))
    order = rng.permutation(len(lm_docs))
    n_valid = int(round(len(order) * config["lm"]["valid_pct"]))
    extra["lm_train_docs"] = [lm_docs[i] for i in order[n_valid:]]
    extra["lm_valid_docs"] = [lm_docs[i] for i in order[:n_valid]]

    docs = _docs(labelled, vocab)
    n_train = len(train)
    bs, seed = config["train"]["batch_size"], int(config.get("seed", 0))
    check_batch_size(bs, n_train, noun)
    train_dl = SortedBucketLoader(docs[:n_train], train["label"].to_numpy(), bs, vocab.pad, shuffle=True,
                                  max_len=t["max_len"], seed=seed)
    valid_dl = None
    if len(valid):  # data.valid_pct = 0: no validation split
        valid_dl = SortedBucketLoader(docs[n_train:], valid["label"].to_numpy(), bs, vocab.pad, shuffle=False,
                                      max_len=t["max_len"])
    n_tokens = sum(len(doc) for doc in lm_docs)
    click.echo(f"vocabulary: {len(vocab)} tokens; language-model text: {len(lm_docs)} {noun}s, {n_tokens:,} tokens",
               err=True)
    return Prepared(train_dl, valid_dl, state, extra)


class InputOrder(Callback):
    """After each validation, the predictions and targets back in the validation texts' own order:
    the loader reads them longest first (``SortedBucketLoader.order``), and valid_preds.npy must line
    up row for row with the texts (K folds' OOF rows, blends with NB-SVM or other runs)."""

    def after_validate(self, learn):
        dl, preds = learn.valid_dl, learn.valid_preds
        if not isinstance(dl, SortedBucketLoader) or preds is None or len(preds) != len(dl.docs):
            return
        import torch

        where = torch.from_numpy(dl.order)
        restored_preds, restored_targets = torch.empty_like(preds), torch.empty_like(learn.valid_targets)
        restored_preds[where], restored_targets[where] = preds, learn.valid_targets
        learn.valid_preds, learn.valid_targets = restored_preds, restored_targets


def check_batch_size(bs: int, n_train: int, noun: str = "text") -> None:
    if bs > n_train:
        raise HarnessError(f"train.batch_size = {bs} is larger than the {n_train} training {noun}s; "
                           f"set train.batch_size to at most {n_train} (or use more {noun}s)")


def _dims(config: dict) -> dict:
    m = config["model"]
    return {"emb_sz": m["emb_sz"], "n_hid": m["n_hid"], "n_layers": m["n_layers"]}


def build_classifier(state: dict, config: dict, n_out: int = 1) -> PoolingClassifier:
    """The classifier: one logit per text (binary), or one per class."""
    m = config["model"]
    pad = state["itos"].index("xxpad")
    encoder = encoder_from_config(len(state["itos"]), m["size"], m["drop_mult"], CLAS_DROPS, pad, **_dims(config))
    return PoolingClassifier(encoder, bptt=config["lm"]["bptt"], pad_idx=pad, n_hidden=m["head_hidden"],
                             drops=(0.4 * m["drop_mult"], 0.1 * m["drop_mult"]), n_out=n_out,
                             max_len=m.get("grad_len", 1400))


def build_lm(itos: list[str], config: dict, dims: dict | None = None) -> LanguageModel:
    m = config["model"]
    pad = itos.index("xxpad")
    encoder = encoder_from_config(len(itos), m["size"], m["drop_mult"], LM_DROPS, pad, **(dims or _dims(config)))
    return LanguageModel(encoder, output_p=LM_DROPS["output_p"] * m["drop_mult"],
                         adaptive_cutoffs=_cutoffs(config["lm"].get("adaptive_cutoffs", []), len(itos)))


def _cutoffs(cutoffs: list, vocab_sz: int) -> list[int]:
    """The configured adaptive-softmax cutoffs that fall inside this vocabulary (none: full softmax)."""
    kept = [int(c) for c in cutoffs if 0 < int(c) < vocab_sz]
    if kept != sorted(set(kept)):
        raise HarnessError(f"lm.adaptive_cutoffs = {cutoffs}: give increasing token counts, e.g. [2000, 6000]")
    return kept


def _lm_loaders(extra: dict, config: dict):
    lm = config["lm"]
    seed = int(config.get("seed", 0))
    n_tokens = sum(len(doc) for doc in extra["lm_train_docs"])
    if lm["max_tokens"]:
        n_tokens = min(n_tokens, lm["max_tokens"])
    if n_tokens // lm["bs"] < 2:
        raise HarnessError(f"lm.bs = {lm['bs']} streams need at least {2 * lm['bs']} tokens of language-model text; "
                           f"there are {n_tokens}: lower lm.bs (or raise lm.max_tokens)")
    train_dl = LMLoader(extra["lm_train_docs"], lm["bs"], lm["bptt"], shuffle=True, seed=seed, max_tokens=lm["max_tokens"])
    valid_dl = None
    valid_docs = extra["lm_valid_docs"]
    if valid_docs:
        n_valid = sum(len(doc) for doc in valid_docs)
        bs = max(1, min(lm["bs"], n_valid // (lm["bptt"] * 2)))  # a small hold-out gets fewer streams
        try:
            valid_dl = LMLoader(valid_docs, bs, lm["bptt"], shuffle=False)
        except ValueError:
            valid_dl = None
    return train_dl, valid_dl


def train_language_model(comp, ctx) -> LanguageModel:
    """The language-model stage: start from lm.pretrained (if set), fit, save the run's lm.pt."""
    from harness.text.ulmfit import load_lm_file, load_pretrained_into, make_lm_learner, save_lm
    from harness.workspace import write_json

    learn, config, run, prepared = ctx.learn, ctx.config, ctx.run, ctx.prepared
    itos = prepared.state["itos"]
    lm_cfg = config["lm"]
    lm_path = run.path("lm.pt")
    model = build_lm(itos, config)
    if learn.resume_state is not None and lm_path.exists():
        click.echo(f"resuming: language model from {lm_path}", err=True)
        load_pretrained_into(model, load_lm_file(lm_path), itos)
        return model
    if lm_cfg["pretrained"]:
        blob = load_lm_file(lm_cfg["pretrained"], lm_cfg.get("pretrained_itos") or None)
        known = load_pretrained_into(model, blob, itos)
        click.echo(f"pretrained language model {lm_cfg['pretrained']}: knows {known} of our {len(itos)} tokens", err=True)
    if lm_cfg["epochs"] > 0:
        train_dl, valid_dl = _lm_loaders(prepared.extra, config)
        lm_learn = make_lm_learner(model, train_dl, valid_dl, lm_cfg, device=learn.device)
        click.echo(f"language model: {lm_cfg['epochs']} epoch(s) of {len(train_dl)} batches "
                   f"({train_dl.n_tokens:,} tokens each)", err=True)
        started = time.perf_counter()
        lm_learn.fit(lm_cfg["epochs"], lm_cfg["lr"], schedule=lm_cfg["schedule"], pct_start=lm_cfg["pct_start"],
                     **_moms(lm_cfg))
        seconds = time.perf_counter() - started
        run.save_history(lm_learn.recorder, title=f"{comp.name} LM {run.id}", prefix="lm_")
        write_json(run.path("lm_summary.json"), {
            "valid_loss": lm_learn.valid_loss, "perplexity": lm_learn.metrics.get("perplexity"),
            "epochs": lm_cfg["epochs"], "tokens_per_epoch": train_dl.n_tokens, "seconds": round(seconds, 2),
            "tokens_per_second": round(lm_cfg["epochs"] * train_dl.n_tokens / seconds, 1)})
    save_lm(lm_path, model, itos)
    return model


def _moms(section: dict) -> dict:
    """One-cycle's beta1 range for a fit of this section; without the key, the Learner's default."""
    return {"moms": tuple(section["moms"])} if "moms" in section else {}


def train_ulmfit(comp, ctx) -> None:
    from harness.text.ulmfit import gradual_unfreezing

    learn, config = ctx.learn, ctx.config
    lm = train_language_model(comp, ctx)
    learn.model.encoder.load_state_dict(lm.encoder.state_dict())  # same names; only the dropouts differ
    t = config["train"]
    click.echo("classifier: gradual unfreezing", err=True)
    gradual_unfreezing(learn, t["stages"], t["lr"], t["epochs"], t["lr_div"], t["schedule"], t["pct_start"],
                       moms=_moms(t).get("moms"))


def classifier_logits(comp, learn, state: dict, texts, config: dict) -> np.ndarray:
    vocab = Vocab(state["itos"])
    docs = _docs(comp.tokenize(texts, config, desc=f"tokenizing test {comp.noun}s"), vocab)
    loader = SortedBucketLoader(docs, None, config["train"]["batch_size"], vocab.pad, shuffle=False,
                                max_len=config["text"]["max_len"])
    preds = learn.predict(loader).numpy()
    out = np.empty((len(docs), *preds.shape[1:]), dtype=np.float32)
    out[loader.order] = preds
    return out


def generate_text(run, prompt: str, words: int, temperature: float, top_k: int, seed: int, device=None) -> str:
    from harness.train.device import pick_device
    from harness.text.tokenizer import Tokenizer, detokenize
    from harness.text.ulmfit import generate, load_lm_file, load_pretrained_into

    config, state = run.config(), run.state()
    if state.get("kind") != "awd-lstm":
        raise HarnessError(f"run {run.id} trained model.kind = {state.get('kind')!r}, which has no language model; "
                           "train one with model.kind = \"awd-lstm\"")
    lm_path = run.path("lm.pt")
    if not lm_path.exists():
        raise HarnessError(f"{lm_path} is missing; the run stopped before its language model was saved")
    blob = load_lm_file(lm_path)
    model = build_lm(blob["itos"], config, blob["dims"])
    load_pretrained_into(model, blob, blob["itos"])
    model.to(pick_device(device))
    if words < 1:
        raise HarnessError("--words must be at least 1")
    tokens = Tokenizer()(prompt)
    sampled = generate(model, blob["itos"], tokens, words, temperature, top_k, seed)
    return detokenize(tokens + sampled)
