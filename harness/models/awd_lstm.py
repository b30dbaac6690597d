"""AWD-LSTM (Merity et al., 2017) as fast.ai's lesson 4 and ULMFiT use it, in plain PyTorch.

Regularisation, from the input up:
- embedding dropout: whole words (rows of the embedding matrix) are dropped for a batch;
- locked (variational) dropout: one mask per sequence, the same at every time step, on the
  embeddings (input_p), between LSTM layers (hidden_p) and on the last layer's output (output_p);
- weight-drop: DropConnect on each LSTM's hidden-to-hidden weights, a new mask per batch, only in
  training;
- tied weights: the language-model decoder reuses the embedding matrix;
- AR/TAR (``harness.text.callbacks.ARTARCallback``): penalties on the size and the step-to-step change of the activations.
The classifier reads a document ``bptt`` tokens at a time carrying the LSTM state (gradients only
through the last ``max_len`` tokens), then pools the outputs (last, max and mean) into a small
dropout head.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


# Sizes by name: a small one for CPU runs, the lesson's, and those of fast.ai's WikiText-103 models:
# 0.7's fwd_wt103.h5 (the 2018 lessons: em_sz, nh, nl = 400, 1150, 3) and fastai v1/v2's
# (awd_lstm_lm_config: emb_sz=400, n_hid=1152, n_layers=3).
SIZES = {
    "cpu": {"emb_sz": 100, "n_hid": 300, "n_layers": 2},
    "lesson": {"emb_sz": 200, "n_hid": 500, "n_layers": 3},
    "ulmfit": {"emb_sz": 400, "n_hid": 1150, "n_layers": 3},
    "ulmfit-v1": {"emb_sz": 400, "n_hid": 1152, "n_layers": 3},
}
# ULMFiT's dropouts for the language model and the classifier, all scaled by drop_mult.
LM_DROPS = {"output_p": 0.1, "hidden_p": 0.15, "input_p": 0.25, "embed_p": 0.02, "weight_p": 0.2}
CLAS_DROPS = {"output_p": 0.4, "hidden_p": 0.3, "input_p": 0.4, "embed_p": 0.05, "weight_p": 0.5}


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence, shared across time steps. Input: (batch, time, features)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        mask = x.new_empty(x.size(0), 1, x.size(2)).bernoulli_(1 - self.p) / (1 - self.p)
        return x * mask


def embedding_dropout(embed: nn.Embedding, words: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Look up ``words`` with whole rows of the embedding matrix dropped (and the rest rescaled)."""
    weight = embed.weight
    if training and p > 0:
        mask = weight.new_empty(weight.size(0), 1).bernoulli_(1 - p) / (1 - p)
        weight = weight * mask
    return F.embedding(words, weight, embed.padding_idx)


class WeightDropLSTM(nn.Module):
    """A one-layer LSTM whose hidden-to-hidden weights get DropConnect (a fresh mask every call)."""

    def __init__(self, n_in: int, n_out: int, weight_p: float):
        super().__init__()
        self.lstm = nn.LSTM(n_in, n_out, batch_first=True)
        self.weight_p = weight_p

    def forward(self, x, state=None):
        if not self.training or self.weight_p == 0:
            return self.lstm(x, state)
        params = dict(self.lstm.named_parameters())
        params["weight_hh_l0"] = F.dropout(params["weight_hh_l0"], self.weight_p, training=True)
        return functional_call(self.lstm, params, (x, state))


class AWDLSTM(nn.Module):
    """The encoder: embedding, then ``n_layers`` LSTMs (the last one back to ``emb_sz`` so weights tie)."""

    def __init__(self, vocab_sz: int, emb_sz: int = 400, n_hid: int = 1150, n_layers: int = 3, pad_idx: int = 1,
                 hidden_p: float = 0.3, input_p: float = 0.4, embed_p: float = 0.05, weight_p: float = 0.5):
        super().__init__()
        self.emb_sz, self.n_hid, self.n_layers = emb_sz, n_hid, n_layers
        self.embed_p = embed_p
        self.embedding = nn.Embedding(vocab_sz, emb_sz, padding_idx=pad_idx)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        with torch.no_grad():
            self.embedding.weight[pad_idx].zero_()
        self.rnns = nn.ModuleList(
            WeightDropLSTM(emb_sz if i == 0 else n_hid, emb_sz if i == n_layers - 1 else n_hid, weight_p)
            for i in range(n_layers))
        self.input_dp = LockedDropout(input_p)
        self.hidden_dps = nn.ModuleList(LockedDropout(hidden_p) for _ in range(n_layers - 1))

    def forward(self, words: torch.Tensor, state=None):
        """Returns (raw outputs per layer, dropped outputs per layer, new state per layer)."""
        x = self.input_dp(embedding_dropout(self.embedding, words, self.embed_p, self.training))
        raw_outputs, outputs, new_state = [], [], []
        for i, rnn in enumerate(self.rnns):
            x, layer_state = rnn(x, None if state is None else state[i])
            new_state.append(layer_state)
            raw_outputs.append(x)
            if i < self.n_layers - 1:
                x = self.hidden_dps[i](x)
            outputs.append(x)
        return raw_outputs, outputs, new_state

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """The embedding, then each LSTM layer: the groups gradual unfreezing walks through."""
        return [list(self.embedding.parameters())] + [list(rnn.parameters()) for rnn in self.rnns]


def detach_state(state):
    return [tuple(t.detach() for t in layer) for layer in state]


class LanguageModel(nn.Module):
    """AWD-LSTM encoder + tied linear decoder. The LSTM state carries over from one batch to the next
    (the batches are consecutive pieces of the same streams) until ``reset()``.

    With ``adaptive_cutoffs`` (e.g. [2000, 6000]) the decoder is an adaptive softmax (Grave et al.,
    2017; torch's AdaptiveLogSoftmaxWithLoss, untied): frequent words get the full-size output layer,
    rarer ones smaller clusters, so the softmax over the vocabulary no longer dominates CPU time. The
    forward pass then returns the last layer's outputs and ``loss`` scores them.
    """

    def __init__(self, encoder: AWDLSTM, output_p: float = 0.1, tie_weights: bool = True, adaptive_cutoffs=()):
        super().__init__()
        self.encoder = encoder
        self.output_dp = LockedDropout(output_p)
        vocab_sz = encoder.embedding.num_embeddings
        self.adaptive = bool(adaptive_cutoffs)
        if self.adaptive:
            self.decoder = nn.AdaptiveLogSoftmaxWithLoss(encoder.emb_sz, vocab_sz, list(adaptive_cutoffs), div_value=4.0)
        else:
            self.decoder = nn.Linear(encoder.emb_sz, vocab_sz)
            nn.init.zeros_(self.decoder.bias)
            if tie_weights:
                self.decoder.weight = encoder.embedding.weight
        self.state = None
        self.raw_output = self.output = None  # the last layer's activations, for AR/TAR

    def reset(self) -> None:
        self.state = None

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        if self.state is not None and self.state[0][0].size(1) != words.size(0):
            self.state = None  # a different batch size (e.g. validation): start fresh streams
        raw_outputs, outputs, state = self.encoder(words, self.state)
        self.state = detach_state(state)  # truncated back-propagation through time
        self.raw_output = raw_outputs[-1]
        self.output = self.output_dp(outputs[-1])
        return self.output if self.adaptive else self.decoder(self.output)

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the next token (the Learner's loss function for this model)."""
        if self.adaptive:
            return self.decoder(pred.reshape(-1, pred.size(-1)), target.reshape(-1)).loss
        return lm_loss(pred, target)

    def next_logits(self, words: torch.Tensor) -> torch.Tensor:
        """Log-probabilities (or logits) of the token after ``words``' last position, per row."""
        out = self(words)[:, -1]
        return self.decoder.log_prob(out) if self.adaptive else out

    def layer_groups(self) -> list[list[nn.Parameter]]:
        groups = self.encoder.layer_groups()
        seen = {id(p) for g in groups for p in g}  # a tied decoder weight is already in the embedding group
        groups[-1] = groups[-1] + [p for p in self.decoder.parameters() if id(p) not in seen]
        return groups


def lm_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(pred.reshape(-1, pred.size(-1)), target.reshape(-1))


class PoolingClassifier(nn.Module):
    """Encoder + concat pooling (last, max, mean of the last layer's outputs) + a dropout head.

    Input: token ids, each row one document, padded with ``pad_idx`` before and/or after it. As
    fastai's MultiBatchEncoder does, the batch is read ``bptt`` tokens at a time with the LSTM state
    carried from one piece to the next, and only the pieces within the last ``max_len`` tokens are read
    with gradients (the ones before run under ``no_grad``), so memory does not grow with the review.

    A document's prediction does not depend on the batch it is in: the batch is laid out again so
    that every document starts on a multiple of ``bptt`` (whole pieces of padding before it, fewer than
    ``bptt`` pad tokens after it), a row's LSTM state stays zero until its document starts, and
    pooling reads only the document's own positions. Alone or beside a longer review, it is read in
    the same pieces from the same zero state. Output: one logit per document.
    """

    def __init__(self, encoder: AWDLSTM, bptt: int = 70, pad_idx: int = 1, n_hidden: int = 50,
                 drops: tuple[float, float] = (0.4, 0.1), n_out: int = 1, max_len: int = 1400):
        super().__init__()
        self.encoder, self.bptt, self.pad_idx, self.max_len = encoder, bptt, pad_idx, max_len
        n_in = 3 * encoder.emb_sz
        self.head = nn.Sequential(
            nn.BatchNorm1d(n_in), nn.Dropout(drops[0]), nn.Linear(n_in, n_hidden), nn.ReLU(inplace=True),
            nn.BatchNorm1d(n_hidden), nn.Dropout(drops[1]), nn.Linear(n_hidden, n_out),
        )
        self.n_out = n_out

    def layout(self, words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(words laid out so each document starts on a multiple of bptt, its start, its length)."""
        real = words != self.pad_idx
        lengths = real.sum(1)
        first = torch.where(lengths > 0, real.int().argmax(1), torch.zeros_like(lengths))
        width = max(1, int(lengths.max()))
        start = (width - lengths) // self.bptt * self.bptt
        rel = torch.arange(width, device=words.device).unsqueeze(0) - start.unsqueeze(1)
        inside = (rel >= 0) & (rel < lengths.unsqueeze(1))
        src = (first.unsqueeze(1) + rel).clamp(0, words.size(1) - 1)
        laid = torch.where(inside, words.gather(1, src), torch.full_like(src, self.pad_idx))
        return laid, start, lengths

    def encode(self, words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The last layer's outputs (batch, width, emb_sz) of the laid-out batch, its starts and lengths."""
        words, start, lengths = self.layout(words)
        bs, width = words.shape
        state = [(torch.zeros(1, bs, rnn.lstm.hidden_size, device=words.device),) * 2 for rnn in self.encoder.rnns]
        pieces = []
        for i in range(0, width, self.bptt):
            chunk = words[:, i:i + self.bptt]
            active = (start <= i).nonzero().squeeze(1)  # rows whose document has started
            with torch.set_grad_enabled(torch.is_grad_enabled() and width - i <= self.max_len):
                sub_state = [tuple(t.index_select(1, active) for t in layer) for layer in state]
                _, outputs, new_state = self.encoder(chunk.index_select(0, active), sub_state)
                state = [tuple(t.index_copy(1, active, n) for t, n in zip(layer, new))
                         for layer, new in zip(state, new_state)]
                out = outputs[-1].new_zeros(bs, chunk.size(1), outputs[-1].size(2))
                pieces.append(out.index_copy(0, active, outputs[-1]))
        return torch.cat(pieces, dim=1), start, lengths

    def pool(self, out: torch.Tensor, start: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Concat pooling over each document's own positions: its last output, the max and the mean."""
        pos = torch.arange(out.size(1), device=out.device).unsqueeze(0)
        inside = ((pos >= start.unsqueeze(1)) & (pos < (start + lengths).unsqueeze(1))).unsqueeze(-1)
        n = lengths.clamp(min=1).unsqueeze(1).to(out.dtype)
        mean = out.masked_fill(~inside, 0).sum(1) / n
        maxed = out.masked_fill(~inside, float("-inf")).max(1).values
        maxed = torch.where(torch.isinf(maxed), torch.zeros_like(maxed), maxed)  # an empty document
        last_pos = (start + lengths - 1).clamp(min=0)
        last = out[torch.arange(out.size(0), device=out.device), last_pos]
        return torch.cat([last, maxed, mean], dim=1)

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.pool(*self.encode(words)))
        return logits.squeeze(1) if self.n_out == 1 else logits

    def layer_groups(self) -> list[list[nn.Parameter]]:
        return self.encoder.layer_groups() + [list(self.head.parameters())]


def encoder_from_config(vocab_sz: int, size: str, drop_mult: float, drops: dict, pad_idx: int = 1,
                        **overrides) -> AWDLSTM:
    if size not in SIZES:
        raise ValueError(f"unknown AWD-LSTM size {size!r}; choose one of {', '.join(SIZES)}")
    dims = {**SIZES[size], **{k: v for k, v in overrides.items() if v}}
    return AWDLSTM(vocab_sz, dims["emb_sz"], dims["n_hid"], dims["n_layers"], pad_idx,
                   hidden_p=drops["hidden_p"] * drop_mult, input_p=drops["input_p"] * drop_mult,
                   embed_p=drops["embed_p"] * drop_mult, weight_p=drops["weight_p"] * drop_mult)


@torch.no_grad()
def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, generator=None,
                banned: list[int] = ()) -> int:
    """Draw one token id from the last position's logits with temperature and top-k sampling."""
    logits = logits.float().clone()
    for i in banned:
        logits[i] = float("-inf")
    if temperature <= 0:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits[logits < kth] = float("-inf")
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))
