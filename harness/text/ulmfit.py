"""ULMFiT's steps on top of the shared Learner: language-model training, saving and loading a language
model (ours, or fast.ai's AWD-LSTM weights), moving its encoder into a classifier, gradual unfreezing
with discriminative learning rates, and sampling text.
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from harness.data.files import check_file
from harness.errors import HarnessError
from harness.scoring.metrics import perplexity
from harness.models.awd_lstm import LanguageModel, sample_next
from harness.train import Learner
from harness.train.rates import lr_per_group
from harness.train.callbacks import ProgressBar, Recorder
from harness.workspace import torch_save

PRETRAINED_HELP = ("a language model saved by `harness train` (runs/<competition>/<run>/lm.pt), or fast.ai's "
                   "AWD-LSTM weights (v1's lstm_wt103.pth or 0.7's fwd_wt103.h5, with itos_wt103.pkl beside it; "
                   "download them from https://s3.amazonaws.com/fast-ai-modelzoo/wt103-fwd.tgz on a machine with "
                   "network access and unpack them there)")


def make_lm_learner(model: LanguageModel, train_dl, valid_dl, lm_config: dict, device=None, callbacks=(),
                    progress=None) -> Learner:
    from harness.text.callbacks import ARTARCallback, ResetState

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


# fast.ai's AWD-LSTM state-dict names, mapped onto ours. 0.7 (old/fastai/lm_rnn.py, rnn_reg.py: the
# 2018 lessons' fwd_wt103.h5) wraps each nn.LSTM in WeightDrop, which re-registers weight_hh_l0 on the
# LSTM itself as weight_hh_l0_raw; v1 and v2 (fastai/text/models/awd_lstm.py, awdlstm.py) register
# weight_hh_l0_raw on the WeightDropout wrapper. v1 also keeps the dropped-out copy under
# module.weight_hh_l0; both keep the embedding a second time inside the embedding dropout.
_FASTAI_KEYS = [
    (re.compile(r"0\.encoder\.weight"), "encoder.embedding.weight"),
    (re.compile(r"0\.rnns\.(\d+)\.(?:module\.)?weight_hh_l0_raw"), r"encoder.rnns.\1.lstm.weight_hh_l0"),
    (re.compile(r"0\.rnns\.(\d+)\.module\.(weight_ih_l0|bias_ih_l0|bias_hh_l0)"), r"encoder.rnns.\1.lstm.\2"),
    (re.compile(r"1\.decoder\.(weight|bias)"), r"decoder.\1"),
]
# Copies of weights mapped above: the embedding inside its dropout, v1's dropped-out hidden weights.
_FASTAI_COPIES = re.compile(r"0\.encoder_with_dropout\.embed\.weight|0\.encoder_dp\.emb\.weight"
                            r"|0\.rnns\.\d+\.module\.weight_hh_l0")


def fastai_to_ours(state: dict, path) -> dict:
    """Our names for a fast.ai 0.7, v1 or v2 AWD-LSTM language model's state dict."""
    out = {}
    for key, value in state.items():
        if _FASTAI_COPIES.fullmatch(key):
            continue
        for pattern, name in _FASTAI_KEYS:
            if pattern.fullmatch(key):
                out[pattern.sub(name, key)] = value
                break
        else:
            raise HarnessError(f"{path}: unexpected key {key!r} for a fast.ai AWD-LSTM language model "
                               "(0.7's fwd_wt103.h5 or v1/v2's lstm_wt103.pth); is it a classifier or another model?")
    if not any(k.endswith("lstm.weight_hh_l0") for k in out):
        raise HarnessError(f"{path} holds no AWD-LSTM layers (no 0.rnns.N ... weight_hh_l0_raw keys)")
    return out


class _ListOfStrings(pickle.Unpickler):
    """An unpickler that builds only built-in containers and strings: it refuses every class or
    function, so a pickle cannot run code while it is read."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"it refers to {module}.{name}")


def load_itos(path) -> list[str]:
    """A fast.ai vocabulary (itos*.pkl): a pickled list of strings and nothing else."""
    path = check_file(path, "pickled vocabulary (a list of strings)")
    try:
        with open(path, "rb") as f:
            itos = _ListOfStrings(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise HarnessError(f"{path} is not a pickled list of strings ({str(exc).splitlines()[0][:120] or type(exc).__name__}); "
                           "use the itos_wt103.pkl that came with the weights") from None
    if not isinstance(itos, list) or not itos or not all(isinstance(t, str) for t in itos):
        raise HarnessError(f"{path} must hold a non-empty list of strings (fast.ai's itos); found {type(itos).__name__}")
    return itos


def check_pretrained(path: str | Path, itos_path: str | Path | None = None) -> None:
    """The cheap checks of a pretrained language model, made before any training: the file is there
    and is a non-empty file, and a named vocabulary is a list of strings."""
    path = Path(path).expanduser()
    if not path.exists():
        raise HarnessError(f"pretrained language model {path} does not exist; put there {PRETRAINED_HELP}")
    check_file(path, "language model file")
    if itos_path:
        load_itos(Path(itos_path).expanduser())


def load_lm_file(path: str | Path, itos_path: str | Path | None = None) -> dict:
    """{"itos", "dims", "model"} from our lm.pt, or from fast.ai's weights (.pth, or 0.7's .h5) plus
    their vocabulary: ``itos_path``, else ``itos_wt103.pkl`` beside the weights."""
    path = Path(path).expanduser()
    check_pretrained(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a cut, foreign or non-torch file
        raise HarnessError(f"{path} is not a language model file torch can read ({type(exc).__name__}); "
                           f"expected {PRETRAINED_HELP}") from None
    if isinstance(blob, dict) and "itos" in blob and "model" in blob:
        return blob
    state = blob.get("model", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict) or "0.encoder.weight" not in state:
        raise HarnessError(f"{path} holds neither a harness lm.pt nor fast.ai AWD-LSTM weights")
    itos_file = Path(itos_path).expanduser() if itos_path else path.parent / "itos_wt103.pkl"
    if not itos_file.exists():
        raise HarnessError(f"{path}: fast.ai weights need their vocabulary: {itos_file} is missing; put the "
                           "itos_wt103.pkl that came with them there, or name it with lm.pretrained_itos")
    itos = load_itos(itos_file)
    state = fastai_to_ours(state, path)
    emb = state["encoder.embedding.weight"]
    if emb.shape[0] != len(itos):
        raise HarnessError(f"{itos_file} lists {len(itos)} tokens but {path} embeds {emb.shape[0]}; "
                           "use the vocabulary saved with these weights")
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
        from harness.models.awd_lstm import SIZES

        named = [name for name, size in SIZES.items() if size == {k: dims[k] for k in size}]
        fix = (f"set model.size = \"{named[0]}\"" if named else
               f"set model.emb_sz={dims['emb_sz']}, model.n_hid={dims['n_hid']}, model.n_layers={dims['n_layers']}")
        raise HarnessError(f"the pretrained language model has sizes emb_sz={dims['emb_sz']}, n_hid={dims['n_hid']}, "
                           f"n_layers={dims['n_layers']}; the config builds emb_sz={enc.emb_sz}, n_hid={enc.n_hid}, "
                           f"n_layers={enc.n_layers}: {fix}")
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
                       schedule: str = "one-cycle", pct_start: float = 0.25, moms=None) -> None:
    """Fit stage by stage: each stage trains the layer groups from ``freeze_to`` on (-1: the head
    only; -2: the head and the last LSTM layer; 0: everything) at rates ``lr * lr_mult`` for the top
    group, divided by ``lr_div`` per group below. ``moms``: one-cycle's (start, middle, end) beta1,
    None for the Learner's default."""
    n = len(learn.layer_groups)
    for i, stage in enumerate(stages):
        unknown = set(stage) - {"freeze_to", "lr_mult", "epochs"}
        if unknown or "freeze_to" not in stage:
            raise HarnessError(f"train.stages[{i}] = {stage}: each stage needs freeze_to, and may set lr_mult and epochs")
        learn.freeze_to(int(stage["freeze_to"]))
        lrs = discriminative_lrs(lr * float(stage.get("lr_mult", 1.0)), n, lr_div)
        learn.fit(int(stage.get("epochs", epochs)), lrs, schedule=schedule, pct_start=pct_start,
                  **({} if moms is None else {"moms": tuple(moms)}))


@torch.no_grad()
def generate(model: LanguageModel, itos: list[str], prompt_tokens: list[str], n_words: int, temperature: float = 1.0,
             top_k: int = 0, seed: int = 0) -> list[str]:
    """Feed the prompt, then sample ``n_words`` tokens one at a time. Special tokens (xxunk, xxpad,
    xxbos, the case and repetition markers ...) are never sampled: their logits are masked, so
    ``--temperature 0`` cannot get stuck on a marker and no marker is left without its word."""
    from harness.text.tokenizer import UNK, is_special

    stoi = {tok: i for i, tok in enumerate(itos)}
    ids = [stoi.get(t, stoi[UNK]) for t in prompt_tokens]
    banned = [i for i, tok in enumerate(itos) if is_special(tok)]
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
