"""Entity embeddings for tabular data (lesson 4; Guo & Berkhahn's third place at Rossmann).

Every categorical column has its own embedding table; the looked-up vectors go through embedding
dropout, are concatenated with the continuous columns and then pass a plain MLP (linear, ReLU,
optional batch norm, dropout) to one output squashed by a sigmoid into ``y_range`` (regression), or to
one logit per class.
"""
from __future__ import annotations

import torch
from torch import nn

from harness.models.layers import logit_of, scale_to_range


class TabularModel(nn.Module):
    def __init__(self, emb_sizes, n_cont: int, layers=(1000, 500), dropouts=(0.001, 0.01), emb_drop: float = 0.04,
                 y_range=None, batchnorm: bool = False, init_output: float | None = None, emb_names=None,
                 n_out: int = 1):
        super().__init__()
        if len(dropouts) != len(layers):
            raise ValueError(f"{len(layers)} layers but {len(dropouts)} dropouts; give one dropout per layer")
        self.embeds = nn.ModuleList([nn.Embedding(card, width) for card, width in emb_sizes])
        # The column of each embedding, for summaries. Not in the state dict: the parameter names
        # stay embeds.0 .. embeds.N, so model.pt files saved before still load.
        self.emb_names = list(emb_names) if emb_names is not None else None
        if self.emb_names is not None and len(self.emb_names) != len(self.embeds):
            raise ValueError(f"{len(self.embeds)} embeddings but {len(self.emb_names)} names")
        for emb in self.embeds:
            # The lesson's initialisation: small uniform values that shrink with the width.
            bound = 2 / (emb.embedding_dim + 1)
            nn.init.uniform_(emb.weight, -bound, bound)
        self.emb_drop = nn.Dropout(emb_drop)
        self.n_emb, self.n_cont = sum(w for _, w in emb_sizes), n_cont
        self.bn_cont = nn.BatchNorm1d(n_cont) if (batchnorm and n_cont) else nn.Identity()
        body, width = [], self.n_emb + n_cont
        for size, p in zip(layers, dropouts):
            linear = nn.Linear(width, size)
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            body += [linear, nn.ReLU()]
            if batchnorm:
                body.append(nn.BatchNorm1d(size))
            body.append(nn.Dropout(p))
            width = size
        self.layers = nn.Sequential(*body)
        self.head = nn.Linear(width, n_out)  # one value or logit, or one logit per class
        self.y_range = tuple(y_range) if y_range else None
        if self.y_range and init_output is not None:
            # Start at the training mean: the first batches then refine instead of climbing.
            with torch.no_grad():
                self.head.bias.fill_(logit_of(init_output, self.y_range))

    def forward(self, cats: torch.Tensor, conts: torch.Tensor) -> torch.Tensor:
        parts = [emb(cats[:, i]) for i, emb in enumerate(self.embeds)]
        x = self.emb_drop(torch.cat(parts, dim=1)) if parts else conts.new_zeros((len(conts), 0))
        if self.n_cont:
            x = torch.cat([x, self.bn_cont(conts)], dim=1)
        x = self.head(self.layers(x))
        x = x.squeeze(1) if x.shape[1] == 1 else x
        return scale_to_range(x, self.y_range) if self.y_range else x

    def module_labels(self) -> dict[str, str]:
        """Names for a summary: ``embeds.0`` shown as ``embeds.0 (Store)``."""
        return {f"embeds.{i}": f"embeds.{i} ({name})" for i, name in enumerate(self.emb_names or [])}

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Embeddings, the hidden layers, the output: three groups for differential rates and freezing."""
        return [list(self.embeds.parameters()),
                [*self.bn_cont.parameters(), *self.layers.parameters()],
                list(self.head.parameters())]
