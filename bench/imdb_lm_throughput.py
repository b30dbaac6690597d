"""Language-model training throughput: the shared Learner (with its callbacks) against a hand-written
loop doing the same work, on the same AWD-LSTM and the same batches.

    python bench/imdb_lm_throughput.py --data-dir ../shared/data/wikitext-2 --threads 1

Text: WikiText-2 valid+test (already tokenized; split on spaces), vocabulary capped like the CPU
config. Both sides: AdamW (betas 0.7, 0.99), gradient clipping 0.25, AR/TAR, truncated BPTT with the
state carried, variable bptt. The Learner side adds its progress bar, recorder and state-reset
callbacks. They alternate epoch by epoch (``--repeats`` each) so load changes hit both alike, and
tokens/s are given per CPU second of this process (``time.process_time``; with one thread this is
the time the work itself took, whatever else the shared machine runs) and per wall-clock second.
``--adaptive 2000,6000`` measures the adaptive-softmax decoder instead of the tied full softmax.
Target: the Learner within a few percent of the hand-written loop.
"""
from __future__ import annotations

import argparse
import copy
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch


def corpus(data_dir: Path, max_vocab: int):
    from harness.text.vocab import Vocab

    words = []
    for name in ("wiki.valid.tokens", "wiki.test.tokens"):
        for line in (data_dir / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                words.extend(["xxbos", *line.split()])
    vocab = Vocab.build(Counter(words), max_vocab=max_vocab, min_freq=1)
    return vocab, vocab.numericalize(words)


def hand_loop(model, dl, alpha=2.0, beta=1.0, clip=0.25) -> tuple[int, float]:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.7, 0.99), weight_decay=0.01)
    model.train()
    model.reset()
    n_tokens = 0
    start, cpu = time.perf_counter(), time.process_time()
    for x, y in dl:
        out = model(x)
        loss = model.loss(out, y)
        loss = loss + alpha * model.output.pow(2).mean()
        loss = loss + beta * (model.raw_output[:, 1:] - model.raw_output[:, :-1]).pow(2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        n_tokens += y.numel()
    return n_tokens, time.perf_counter() - start, time.process_time() - cpu


def learner_epoch(model, dl) -> tuple[int, float]:
    from harness.text.ulmfit import make_lm_learner

    cfg = {"wd": 0.01, "betas": [0.7, 0.99], "clip": 0.25, "alpha": 2.0, "beta": 1.0}
    learn = make_lm_learner(model, dl, None, cfg, progress=False)
    learn.get_callback(__import__("harness.train.callbacks", fromlist=["Recorder"]).Recorder).echo = False
    n_tokens = sum(y.numel() for _, y in copy.deepcopy(dl))
    start, cpu = time.perf_counter(), time.process_time()
    learn.fit(1, 1e-3, schedule="constant")
    return n_tokens, time.perf_counter() - start, time.process_time() - cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--size", default="cpu")
    ap.add_argument("--max-vocab", type=int, default=10000)
    ap.add_argument("--tokens", type=int, default=150_000, help="tokens per epoch")
    ap.add_argument("--bs", type=int, default=32)
    ap.add_argument("--bptt", type=int, default=70)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--adaptive", default="", help="adaptive-softmax cutoffs, e.g. 2000,6000 (default: tied full softmax)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from harness.models.awd_lstm import LM_DROPS, LanguageModel, encoder_from_config
    from harness.text.batches import LMLoader

    vocab, ids = corpus(Path(args.data_dir), args.max_vocab)
    print(f"{len(ids):,} tokens, vocabulary {len(vocab):,}, size {args.size}, bs {args.bs}, bptt {args.bptt}, "
          f"{torch.get_num_threads()} thread(s)")
    torch.manual_seed(0)
    cutoffs = [int(c) for c in args.adaptive.split(",") if c]
    base = LanguageModel(encoder_from_config(len(vocab), args.size, 1.0, LM_DROPS, vocab.pad), LM_DROPS["output_p"],
                         adaptive_cutoffs=cutoffs)
    print(f"decoder: {'adaptive softmax, cutoffs ' + str(cutoffs) if cutoffs else 'tied full softmax'}")
    results = {"hand-written loop": [], "Learner": []}
    walls = {"hand-written loop": [], "Learner": []}
    for r in range(args.repeats):
        for name in ("Learner", "hand-written loop") if r % 2 == 0 else ("hand-written loop", "Learner"):
            model = copy.deepcopy(base)
            dl = LMLoader([ids], args.bs, args.bptt, shuffle=True, seed=r, max_tokens=args.tokens)
            n, seconds, cpu = (learner_epoch if name == "Learner" else hand_loop)(model, dl)
            results[name].append(n / cpu)
            walls[name].append(n / seconds)
            print(f"  {name}: {n:,} tokens in {cpu:.1f} CPU s ({n / cpu:,.0f} tokens/CPU s), "
                  f"{seconds:.1f} wall s ({n / seconds:,.0f} tokens/s)", flush=True)
    print()
    print("| loop | tokens per CPU s (best) | (mean) | tokens per wall s (best) |")
    print("|---|---|---|---|")
    for name, rates in results.items():
        print(f"| {name} | {max(rates):,.0f} | {np.mean(rates):,.0f} | {max(walls[name]):,.0f} |")
    ratio = max(results["Learner"]) / max(results["hand-written loop"])
    print(f"\nLearner / hand-written (best of {args.repeats}, CPU time): {ratio:.3f}")


if __name__ == "__main__":
    main()
