"""The Learner: one training loop for every competition.

It owns a model, its train/valid loaders, loss, metrics and an AdamW optimizer with one parameter
group per layer group (for differential learning rates and freezing). Anything beyond the bare loop
is a callback (see ``harness.train.callbacks``).

In a group of processes (``harness.train.distributed``) each fit trains a DistributedDataParallel wrapper
of the model, built when the fit starts (so freezing between fits is seen), on this process's share of
every batch; validation gathers every process's predictions, so its metrics are those of one process on
the same model; rank 0 alone writes weights and checkpoints.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from harness.train import distributed
from harness.train.device import pick_device
from harness.errors import HarnessError
from harness.scoring.metrics import Metric
from harness.train.callbacks import EVENTS, CancelFit, Callback, Recorder
from harness.train.rates import lr_per_group
from harness.train.rng import rng_state, set_rng_state
from harness.train.schedules import DEFAULT_MOMS, SCHEDULES, make_scheduler, sgdr_epochs
from harness.workspace import torch_save


def _default_layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    return [list(model.parameters())]


class Learner:
    def __init__(
        self,
        model: nn.Module,
        train_dl,
        valid_dl,
        loss_fn,
        metrics: Sequence[Metric] = (),
        layer_groups: Sequence[Sequence[nn.Parameter]] | None = None,
        wd: float = 0.01,
        betas: tuple[float, float] = (0.9, 0.99),
        clip: float | None = None,
        device: str | torch.device | None = None,
        mixed_precision: str = "auto",
        callbacks: Sequence[Callback] = (),
        keep_valid_preds: bool = True,
    ):
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.model = model.to(self.device)
        self.train_dl, self.valid_dl = train_dl, valid_dl
        self.loss_fn = loss_fn
        self.metric_list = list(metrics)
        self.clip = clip
        self.keep_valid_preds = keep_valid_preds
        groups = [list(g) for g in (layer_groups or _default_layer_groups(self.model))]
        self.layer_groups = groups
        # The configured betas: one-cycle cycles beta1 during a fit, and every fit ends by restoring these.
        self.betas = (float(betas[0]), float(betas[1]))
        self.opt = torch.optim.AdamW(
            [{"params": g} for g in groups], lr=1e-3, weight_decay=wd, betas=betas,
        )
        self.amp_dtype, self.scaler = self._mixed_precision(mixed_precision)
        self.callbacks: list[Callback] = []
        self.add_callbacks(callbacks)
        self.fit_index = -1  # how many fit() calls have started; checkpoints record it
        self.resume_state: dict | None = None
        self.epoch, self.n_epochs = 0, 0
        self.valid_loss, self.metrics = float("nan"), {}
        self.valid_preds = None
        self.scheduler = None
        self.ddp = None  # the DistributedDataParallel wrapper during a fit in a group of processes
        if distributed.active() and self.device.type == "cuda":
            # Batch statistics over the global batch, as one process computes them (CUDA only in torch).
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)

    # ----------------------------------------------------------------- callbacks
    def add_callbacks(self, callbacks: Sequence[Callback]) -> None:
        self.callbacks = sorted([*self.callbacks, *callbacks], key=lambda cb: cb.order)
        # Bind only the overridden handlers, so an event nobody listens to costs nothing per batch.
        self._handlers = {
            event: [getattr(cb, event) for cb in self.callbacks
                    if getattr(type(cb), event) is not getattr(Callback, event)]
            for event in EVENTS
        }

    def remove_callback(self, callback: Callback) -> None:
        self.callbacks = [cb for cb in self.callbacks if cb is not callback]
        self.add_callbacks([])

    @contextlib.contextmanager
    def using_loaders(self, train_dl, valid_dl):
        """Train and validate on other loaders inside the block (e.g. cached activations feeding only
        the head), then put the learner's own back, whatever happens in the block."""
        own = self.train_dl, self.valid_dl
        self.train_dl, self.valid_dl = train_dl, valid_dl
        try:
            yield self
        finally:
            self.train_dl, self.valid_dl = own

    def get_callback(self, cls):
        return next((cb for cb in self.callbacks if isinstance(cb, cls)), None)

    def _event(self, name: str) -> None:
        for handler in self._handlers[name]:
            handler(self)

    # ----------------------------------------------------------------- freezing
    def freeze_to(self, n: int) -> None:
        """Freeze the first ``n`` layer groups (negative counts from the end); train the rest."""
        n = n % len(self.layer_groups) if n < 0 else n
        for i, group in enumerate(self.layer_groups):
            for p in group:
                p.requires_grad_(i >= n)

    def freeze(self) -> None:
        """Train only the last layer group (the head)."""
        self.freeze_to(len(self.layer_groups) - 1)

    def unfreeze(self) -> None:
        self.freeze_to(0)

    # ----------------------------------------------------------------- precision
    def _mixed_precision(self, mode: str):
        if self.device.type != "cuda" or mode in ("none", "fp32", None):
            return None, None
        if mode == "auto":
            mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if mode == "bf16":
            return torch.bfloat16, None
        if mode == "fp16":
            return torch.float16, torch.amp.GradScaler("cuda")
        raise ValueError(f"mixed_precision must be auto, bf16, fp16 or none; got {mode!r}")

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    # ----------------------------------------------------------------- the loop
    def to_device(self, batch):
        """A batch (a tensor or nested tuples of them) on the learner's device."""
        if batch is None:
            return None
        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True)
        return tuple(self.to_device(b) for b in batch)

    def _forward(self, xb, model=None):
        model = model or self.model
        return model(*xb) if isinstance(xb, tuple) else model(xb)

    def train_step(self, xb, yb) -> None:
        """One optimisation step on one batch (also used by lr_find)."""
        self.xb, self.yb = self.to_device(xb), self.to_device(yb)
        self._event("before_batch")
        with self._autocast():
            self.pred = self._forward(self.xb, self.ddp)  # the wrapper averages gradients between processes
            self.loss = self.loss_fn(self.pred, self.yb)
        self._event("after_loss")
        # The global batch's loss; and, in a group of processes, this process's loss weighted by its share of
        # the batch, so that DDP's mean of the gradients is the one process's gradient even when the last
        # batch splits unevenly.
        loss, self.loss_value = distributed.weighted_loss(self.loss, len(self.yb))
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.opt)
        else:
            loss.backward()
        if self.clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        if self.scaler is not None:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        if self.scheduler is not None:
            self.scheduler.step()
        self._event("after_step")

    def fit(self, epochs: int, lr=1e-3, schedule: str = "constant", pct_start: float = 0.25,
            div_factor: float = 25.0, final_div_factor: float = 1e4, cycle_len: int = 1,
            cycle_mult: int = 1, moms=DEFAULT_MOMS) -> list[dict]:
        """Train for ``epochs`` epochs. ``lr`` is a float, a list (one per layer group) or a slice.

        With ``schedule="sgdr"``, ``epochs`` counts cycles: the fit lasts
        ``cycle_len * (1 + cycle_mult + cycle_mult**2 + ...)`` epochs. One-cycle moves Adam's beta1
        through ``moms`` (start, at the peak rate, end); however the fit ends, the optimizer gets the
        betas the Learner was configured with back, so the next fit starts from them.
        """
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
        self.fit_index += 1
        resume = self.resume_state
        if resume is not None and resume["fit_index"] > self.fit_index:
            return []  # this fit finished before the checkpoint was taken: skip it
        n_epochs = sgdr_epochs(epochs, cycle_len, cycle_mult) if schedule == "sgdr" else epochs
        self.n_epochs = n_epochs
        lrs = lr_per_group(lr, len(self.layer_groups))
        for group, group_lr in zip(self.opt.param_groups, lrs):
            group["lr"] = group_lr
            group.pop("initial_lr", None)
        self.restore_betas()
        with distributed.split(self.train_dl, whole_batches=True):
            return self._fit(resume, n_epochs, schedule, lrs, pct_start, div_factor, final_div_factor, cycle_len,
                             cycle_mult, moms)

    def _fit(self, resume, n_epochs, schedule, lrs, pct_start, div_factor, final_div_factor, cycle_len,
             cycle_mult, moms) -> list[dict]:
        try:
            self.scheduler = make_scheduler(
                schedule, self.opt, n_epochs, len(self.train_dl), lrs, pct_start=pct_start, div_factor=div_factor,
                final_div_factor=final_div_factor, cycle_len=cycle_len, cycle_mult=cycle_mult, moms=moms,
            )
            start_epoch = 0
            if resume is not None and resume["fit_index"] == self.fit_index:
                start_epoch = self._load_training_state(resume) + 1
                self.resume_state = None
            start_history = len(self.history)
            self.ddp = self._wrapped()
            try:
                self._event("before_fit")
                for epoch in range(start_epoch, n_epochs):
                    self.epoch = epoch
                    self.model.train()
                    self._event("before_epoch")
                    for xb, yb in self.train_dl:
                        self.train_step(xb, yb)
                        self._event("after_batch")
                    self.validate()
                    self._event("after_epoch")
            except CancelFit:
                pass
            finally:
                self._event("after_fit")
        finally:
            self.scheduler = None
            self.ddp = None  # its hooks go with it; the next fit wraps the parameters it trains then
            self.restore_betas()
        return self.history[start_history:]

    def _wrapped(self):
        """The model in DistributedDataParallel for this fit (None in one process). DDP syncs the gradients
        of the parameters that train when it is built, so it is built per fit, after any freezing."""
        if not distributed.active():
            return None
        from torch.nn.parallel import DistributedDataParallel

        if not any(p.requires_grad for p in self.model.parameters()):
            raise HarnessError("every layer group is frozen: nothing to train; unfreeze a layer group first")
        return DistributedDataParallel(self.model, device_ids=[self.device] if self.device.type == "cuda" else None,
                                       broadcast_buffers=distributed.has_training_buffers(self.model))

    def restore_betas(self) -> None:
        """Put the configured betas back into every parameter group (one-cycle moves beta1)."""
        for group in self.opt.param_groups:
            group["betas"] = self.betas

    def fit_one_cycle(self, epochs: int, lr=1e-3, moms=DEFAULT_MOMS, **kwargs):
        return self.fit(epochs, lr, schedule="one-cycle", moms=moms, **kwargs)

    def fit_sgdr(self, n_cycles: int, lr=1e-3, cycle_len: int = 1, cycle_mult: int = 1):
        return self.fit(n_cycles, lr, schedule="sgdr", cycle_len=cycle_len, cycle_mult=cycle_mult)

    @property
    def recorder(self) -> Recorder | None:
        """The Recorder callback (per-epoch history, batch losses), if the learner has one."""
        return self.get_callback(Recorder)

    @property
    def history(self) -> list[dict]:
        recorder = self.recorder
        return recorder.history if recorder else []

    # ----------------------------------------------------------------- evaluation
    @property
    def primary_metric(self) -> Metric | None:
        return self.metric_list[0] if self.metric_list else None

    @property
    def primary_score(self) -> float | None:
        metric = self.primary_metric
        return self.metrics.get(metric.name) if metric else self.valid_loss

    @torch.no_grad()
    def validate(self, dl=None) -> tuple[float, dict]:
        """Loss and metrics on the validation loader; sets ``valid_loss``, ``metrics``, ``valid_preds``."""
        dl = dl or self.valid_dl
        if dl is None:
            self.valid_loss, self.metrics = float("nan"), {}
            return self.valid_loss, self.metrics
        self.model.eval()
        self._event("before_validate")
        self._sync_buffers()
        with distributed.split(dl, whole_batches=False) as split:
            total, count, preds, targets = self._evaluate(dl)
        if split:  # every process scored its block of rows: put them together, in order
            parts = distributed.gather((total, count, preds, targets))
            total, count = sum(p[0] for p in parts), sum(p[1] for p in parts)
            kept = [p for p in parts if p[2] is not None]
            preds = torch.cat([p[2] for p in kept]) if kept else None
            targets = torch.cat([p[3] for p in kept]) if kept else None
        self.valid_loss = total / max(count, 1)
        self.metrics = {}
        if preds is not None:
            self.valid_preds, self.valid_targets = preds, targets
        for metric in self.metric_list:
            if metric.from_loss:
                self.metrics[metric.name] = metric(self.valid_loss)
            elif preds is not None:
                self.metrics[metric.name] = metric(self.valid_preds, self.valid_targets)
        self._event("after_validate")
        return self.valid_loss, self.metrics

    def _evaluate(self, dl):
        """Summed loss, rows, and (with ``keep_valid_preds``) the predictions and targets of ``dl``."""
        total, count = 0.0, 0
        preds, targets = [], []
        for xb, yb in dl:
            xb, yb = self.to_device(xb), self.to_device(yb)
            with self._autocast():
                pred = self._forward(xb)
                loss = self.loss_fn(pred, yb)
            n = len(yb)
            total += loss.item() * n
            count += n
            if self.keep_valid_preds:
                preds.append(pred.float().cpu())
                targets.append(yb.cpu())
        if not preds:
            return total, count, None, None
        return total, count, torch.cat(preds), torch.cat(targets)

    def _sync_buffers(self) -> None:
        """Rank 0's buffers (BatchNorm's running statistics) in every process, so all validate one model."""
        if distributed.active():
            import torch.distributed as dist

            for buffer in self.model.buffers():
                dist.broadcast(buffer.data, src=0)

    @torch.no_grad()
    def predict(self, dl) -> torch.Tensor:
        """Raw model outputs for every batch of ``dl`` (targets, if any, are ignored)."""
        self.model.eval()
        outs = []
        for xb, _ in dl:
            with self._autocast():
                outs.append(self._forward(self.to_device(xb)).float().cpu())
        return torch.cat(outs)

    # ----------------------------------------------------------------- persistence
    def save_model(self, path) -> None:
        if distributed.is_main():  # rank 0 alone writes files; the weights are the same in every process
            torch_save(self.model.state_dict(), path)

    def load_model(self, path) -> None:
        self.model.load_state_dict(torch.load(path, map_location=self.device, weights_only=True))

    def save_checkpoint(self, path) -> None:
        """Everything needed to continue exactly: model, optimizer, scheduler, epoch, RNG state and the
        state of every callback that has one (keyed by class name, so one callback per class).

        In a group of processes every process calls it (it gathers each one's random state) and rank 0
        writes the file."""
        rng_ranks = distributed.gather(rng_state())
        if not distributed.is_main():
            return
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "fit_index": self.fit_index,
            "epoch": self.epoch,
            "rng": rng_ranks[0],
            "rng_ranks": rng_ranks if len(rng_ranks) > 1 else None,  # each process's, to resume each exactly
            "train_dl": self.train_dl.state_dict() if hasattr(self.train_dl, "state_dict") else None,
            "history": self.history,
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks if hasattr(cb, "state_dict")},
        }
        torch_save(state, path)

    def resume_from(self, path) -> None:
        """Arrange for the matching ``fit`` call to continue after the checkpoint's epoch. In a group of
        processes rank 0 reads ``path`` and sends the state to the others (which need no copy of the file)."""
        self.resume_state = distributed.from_main(lambda: torch.load(Path(path), map_location="cpu", weights_only=True))

    def _load_training_state(self, state: dict) -> int:
        try:
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:  # another model's checkpoint, or an older layout
            raise HarnessError(f"the checkpoint does not fit this model ({str(exc).splitlines()[0][:160]}); "
                               "start a new run instead of resuming this one") from None
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if state.get("train_dl") is not None and hasattr(self.train_dl, "load_state_dict"):
            self.train_dl.load_state_dict(state["train_dl"])
        saved_callbacks = state.get("callbacks") or {}
        for cb in self.callbacks:
            if type(cb).__name__ in saved_callbacks and hasattr(cb, "load_state_dict"):
                cb.load_state_dict(saved_callbacks[type(cb).__name__])
        recorder = self.get_callback(Recorder)
        if recorder is not None and state.get("history"):
            recorder.history[:] = list(state["history"])
        ranks = state.get("rng_ranks")
        same_job = ranks is not None and len(ranks) == distributed.world_size()
        set_rng_state(ranks[distributed.rank()] if same_job else state["rng"])
        return int(state["epoch"])

    # ----------------------------------------------------------------- lr finder
    def lr_find(self, **kwargs):
        from harness.train.lr_find import lr_find

        distributed.refuse("lr_find")  # its sweep and its restore of every state are one process's
        return lr_find(self, **kwargs)
