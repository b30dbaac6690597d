"""ULMFiT's steps on top of the shared Learner: language-model training, saving and loading a language
model (ours, or fast.ai's AWD-LSTM weights), moving its encoder into a classifier, gradual unfreezing
with discriminative learning rates, and sampling text.
"""
from __future__ import annotations

from pathlib import Path

import torch

from harness.errors import HarnessError
from harness.metrics import perplexity
from harness.models.awd_lstm import LanguageModel, sample_next
from harness.train import Learner
from harness.train.learner import lr_per_group
from harness.train.callbacks import ProgressBar, Recorder
from harness.workspace import torch_save

PRETRAINED_HELP = ("a language model saved by `harness train` (runs/<competition>/<run>/lm.pt), or fast.ai's "
                   "AWD-LSTM weights (lstm_wt103.pth with itos_wt103.pkl beside it; download them from "
                   "https://s3.amazonaws.com/fast-ai-modelzoo/wt103-fwd.tgz on a machine with network access "
                   "and unpack them there)")


def make_lm_learner(model: LanguageModel, train_dl, valid_dl, lm_config: dict, device=None, callbacks=(),
                    progress=None) -> Learner:
    from harness.models.awd_lstm import ARTARCallback, ResetState

    cbs = [Recorder(echo=True), ProgressBar(disable=None if progress is None else not progress), ResetState(),
           ARTARCallback(lm_config.get("alpha", 2.0), lm_config.get("beta", 1.0)), *callbacks]
    return Learner(model, train_dl, valid_dl, model.loss, [perplexity], layer_groups=model.layer_groups(),
                   wd=lm_config.get("wd", 0.01), betas=tuple(lm_config.get("betas", (0.7, 0.99))),
                   clip=lm_config.get("clip") or None, device=device, callbacks=cbs, keep_valid_preds=False)


def save_lm(path: Path, model: LanguageModel, itos: list[str]) -> None:
    enc = model.encoder
    torch_save({"itos": list(itos), "dims": {"emb_sz": enc.emb_sz, "n_hid": enc.n_hid, "n_layers": enc.n_layers},
                "adaptive": model.adaptive,
                "model": model.state_dict()}, path)


def _fastai_to_ours(state: dict) -> dict:
    """Rename fast.ai v1 AWD-LSTM keys (0.encoder.weight, 0.rnns.0.weight_hh_l0_raw, 1.decoder.bias ...)."""
    out = {}
    for key, value in state.items():
        if key.startswith("0.encoder_dp") or key.endswith(".module.weight_hh_l0"):
            continue  # a copy of the embedding / the dropped-out weights
        new = key.replace("0.encoder.weight", "encoder.embedding.weight")
        new = new.replace("0.rnns.", "encoder.rnns.").replace(".module.", ".lstm.").replace("1.decoder.", "decoder.")
        new = new.replace("weight_hh_l0_raw", "lstm.weight_hh_l0")
        out[new] = value
    return out


def load_lm_file(path: str | Path) -> dict:
    """{"itos", "dims", "model"} from our lm.pt or from fast.ai's .pth + itos .pkl."""
    path = Path(path).expanduser()
    if not path.exists():
        raise HarnessError(f"pretrained language model {path} does not exist; put there {PRETRAINED_HELP}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise HarnessError(f"{path} is not a language model file torch can read ({type(exc).__name__}); "
                           f"expected {PRETRAINED_HELP}") from None
    if isinstance(blob, dict) and "itos" in blob and "model" in blob:
        return blob
    state = blob.get("model", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict) or "0.encoder.weight" not in state:
        raise HarnessError(f"{path} holds neither a harness lm.pt nor fast.ai AWD-LSTM weights")
    itos_files = sorted(path.parent.glob("itos*.pkl"))
    if not itos_files:
        raise HarnessError(f"{path}: fast.ai weights need their vocabulary (itos_wt103.pkl) in {path.parent}")
    import pickle

    with open(itos_files[0], "rb") as f:
        itos = list(pickle.load(f))
    state = _fastai_to_ours(state)
    emb = state["encoder.embedding.weight"]
    n_layers = len({k.split(".")[2] for k in state if k.startswith("encoder.rnns.")})
    n_hid = state["encoder.rnns.0.lstm.weight_hh_l0"].shape[1]
    return {"itos": itos, "dims": {"emb_sz": emb.shape[1], "n_hid": n_hid, "n_layers": n_layers}, "model": state}


def load_pretrained_into(model: LanguageModel, blob: dict, itos: list[str]) -> int:
    """Copy a saved language model into ``model`` whose vocabulary is ``itos``. Rows of tokens both
    vocabularies share are copied; new tokens start at the mean embedding (as ULMFiT does).
    Returns how many of our tokens the pretrained model knew."""
    enc = model.encoder
    dims = blob["dims"]
    if (dims["emb_sz"], dims["n_hid"], dims["n_layers"]) != (enc.emb_sz, enc.n_hid, enc.n_layers):
        raise HarnessError(f"the pretrained language model has sizes {dims}; the config builds "
                           f"emb_sz={enc.emb_sz}, n_hid={enc.n_hid}, n_layers={enc.n_layers}: set model.size to match")
    state = dict(blob["model"])
    same_vocab = list(blob["itos"]) == list(itos)
    if model.adaptive or blob.get("adaptive"):
        # An adaptive softmax's clusters follow its vocabulary: keep it only for the very same one.
        if not (same_vocab and model.adaptive and blob.get("adaptive")):
            state = {k: v for k, v in state.items() if not k.startswith("decoder.")}
    old_emb = state.pop("encoder.embedding.weight")
    old_bias = state.pop("decoder.bias", None)
    state.pop("decoder.weight", None)
    old_stoi = {tok: i for i, tok in enumerate(blob["itos"])}
    new_emb = old_emb.mean(0).repeat(len(itos), 1)
    new_bias = torch.full((len(itos),), float(old_bias.mean()) if old_bias is not None else 0.0)
    known = 0
    for i, tok in enumerate(itos):
        j = old_stoi.get(tok)
        if j is not None:
            new_emb[i] = old_emb[j]
            if old_bias is not None:
                new_bias[i] = old_bias[j]
            known += 1
    state["encoder.embedding.weight"] = new_emb
    if not model.adaptive:
        state["decoder.bias"] = new_bias
        if model.decoder.weight is not model.encoder.embedding.weight:
            state["decoder.weight"] = new_emb
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("decoder.")]
    if missing or unexpected:
        raise HarnessError(f"the pretrained language model does not fit this AWD-LSTM: missing {missing[:3]}, "
                           f"unexpected {unexpected[:3]}")
    return known


def discriminative_lrs(top_lr: float, n_groups: int, lr_div: float) -> list[float]:
    """The top group trains at ``top_lr``; each group below it ``lr_div`` times slower."""
    return lr_per_group(slice(top_lr / lr_div ** (n_groups - 1), top_lr), n_groups)


def gradual_unfreezing(learn: Learner, stages: list[dict], lr: float, epochs: int, lr_div: float,
                       schedule: str = "one-cycle", pct_start: float = 0.25) -> None:
    """Fit stage by stage: each stage trains the layer groups from ``freeze_to`` on (-1: the head
    only; -2: the head and the last LSTM layer; 0: everything) at rates ``lr * lr_mult`` for the top
    group, divided by ``lr_div`` per group below."""
    n = len(learn.layer_groups)
    for i, stage in enumerate(stages):
        unknown = set(stage) - {"freeze_to", "lr_mult", "epochs"}
        if unknown or "freeze_to" not in stage:
            raise HarnessError(f"train.stages[{i}] = {stage}: each stage needs freeze_to, and may set lr_mult and epochs")
        learn.freeze_to(int(stage["freeze_to"]))
        lrs = discriminative_lrs(lr * float(stage.get("lr_mult", 1.0)), n, lr_div)
        learn.fit(int(stage.get("epochs", epochs)), lrs, schedule=schedule, pct_start=pct_start)


@torch.no_grad()
def generate(model: LanguageModel, itos: list[str], prompt_tokens: list[str], n_words: int, temperature: float = 1.0,
             top_k: int = 0, seed: int = 0) -> list[str]:
    """Feed the prompt, then sample ``n_words`` tokens one at a time (special tokens but markers banned)."""
    from harness.text.tokenizer import BOS, EOS, PAD, UNK

    stoi = {tok: i for i, tok in enumerate(itos)}
    ids = [stoi.get(t, stoi[UNK]) for t in prompt_tokens]
    banned = [stoi[t] for t in (UNK, PAD, BOS, EOS) if t in stoi]
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    model.eval()
    model.reset()
    logits = model.next_logits(torch.tensor([ids], device=device))[0]
    out = []
    for _ in range(n_words):
        nxt = sample_next(logits.cpu(), temperature, top_k, generator, banned)
        out.append(itos[nxt])
        logits = model.next_logits(torch.tensor([[nxt]], device=device))[0]
    model.reset()
    return out
