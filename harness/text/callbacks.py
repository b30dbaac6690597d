"""Trainer callbacks a language model's training needs: fresh streams each epoch, and AR/TAR.

They read the AWD-LSTM's ``output`` / ``raw_output`` (harness.models.awd_lstm) and live here, above
both the model and the trainer, so that the model layer never imports the trainer.
"""
from __future__ import annotations

from harness.train.callbacks import Callback


class ResetState(Callback):
    """Start the language model's streams afresh at each epoch and before validating."""

    during_lr_find = True

    def before_fit(self, learn):
        learn.model.reset()

    before_epoch = before_validate = after_validate = before_fit


class ARTARCallback(Callback):
    """Activation regularisation (alpha * mean(h^2) on the dropped outputs) and temporal AR
    (beta * mean((h_t - h_{t-1})^2) on the raw outputs) of the last LSTM layer, in training only."""

    during_lr_find = True

    def __init__(self, alpha: float = 2.0, beta: float = 1.0):
        self.alpha, self.beta = alpha, beta

    def after_loss(self, learn):
        model = learn.model
        if not model.training or model.output is None:
            return
        if self.alpha:
            learn.loss = learn.loss + self.alpha * model.output.float().pow(2).mean()
        if self.beta and model.raw_output.size(1) > 1:
            diff = model.raw_output[:, 1:] - model.raw_output[:, :-1]
            learn.loss = learn.loss + self.beta * diff.float().pow(2).mean()
