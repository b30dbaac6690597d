"""A pretrained torchvision CNN with the lesson's dropout head (fast.ai 2018, lessons 1-4).

The network is ``body -> pool -> head``:

- ``body``: a torchvision backbone without its average pool and final linear layer, with ImageNet
  weights from torchvision's weights API (or random weights with ``pretrained=False``);
- ``pool``: concat pooling, as fastai's head does: adaptive max and average pooling side by side,
  flattened, so the head sees ``2 * channels`` features;
- ``head``: for each extra layer ``BatchNorm1d -> Dropout(p) -> Linear -> ReLU``, then the final
  ``BatchNorm1d -> Dropout(p) -> Linear -> LogSoftmax``. ``p == 0`` leaves the dropout layer out.

``body`` and ``pool`` together give the activations that are precomputed once and cached; the head
alone then trains on them (``VisionModel.cached_features``).
"""
from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from harness.data.files import check_file
from harness.errors import HarnessError
from harness.progress import stderr_is_terminal

# name -> (torchvision constructor name, weights enum name); the layer groups are cut the same way.
BACKBONES = {
    "resnet18": ("resnet18", "ResNet18_Weights"),
    "resnet34": ("resnet34", "ResNet34_Weights"),
    "resnet50": ("resnet50", "ResNet50_Weights"),
    "resnext50_32x4d": ("resnext50_32x4d", "ResNeXt50_32X4D_Weights"),
}
# Children of a torchvision ResNet body: conv1, bn1, relu, maxpool, layer1..layer4. The lesson's
# differential learning rates use three groups: up to layer2, layer3-4, and the head.
BODY_SPLIT = 6


def weights_file(arch: str) -> tuple[str, Path]:
    """The download URL of ``arch``'s ImageNet weights and the file torch hub keeps them in."""
    import torchvision.models as tvm

    weights = getattr(tvm, BACKBONES[arch][1]).IMAGENET1K_V1
    name = Path(urlparse(weights.url).path).name
    return weights.url, Path(torch.hub.get_dir()) / "checkpoints" / name


def _check_arch(arch: str) -> None:
    if arch not in BACKBONES:
        raise HarnessError(f"model.arch = {arch!r}: choose one of {', '.join(BACKBONES)}")


def hash_prefix(path: Path) -> str | None:
    """The hex digits between ``-`` and the extension of a torchvision weights file name
    (``resnet34-b627a593.pth``): the start of the file's SHA-256, which torch.hub checks on download."""
    match = torch.hub.HASH_REGEX.search(Path(path).name)
    return match.group(1) if match and match.group(1) else None


def load_weights(path: Path) -> dict:
    """A state dict from a weights file, whether downloaded or placed by hand: its SHA-256 must start
    with the hash prefix in its name, and it is unpickled with ``weights_only=True`` (tensors only),
    so a file from elsewhere can neither run code nor pass for the real weights."""
    try:
        path = check_file(path, what="weights file")
    except HarnessError as exc:  # a folder or an empty file where the weights should be
        raise HarnessError(f"{exc}; delete it and download it again") from None
    expected = hash_prefix(path)
    if expected is not None:
        sha256 = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                sha256.update(block)
        if not sha256.hexdigest().startswith(expected):
            raise HarnessError(f"{path} does not match the hash in its name (SHA-256 should start with {expected}, "
                               f"it starts with {sha256.hexdigest()[:len(expected)]}); delete it and download it again")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file, or one holding more than tensors
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HarnessError(f"{path} cannot be read as a weights file ({reason}); delete it and download it again") from None
    if not isinstance(state, dict):
        raise HarnessError(f"{path} holds a {type(state).__name__}, not a state dict; delete it and download it again")
    return state


def download_weights(arch: str, url: str, path: Path) -> None:
    """Download ``url`` to ``path`` (torch.hub checks the hash before it renames the file into place)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), hash_prefix(path), progress=stderr_is_terminal())
    except Exception as exc:  # no network, a proxy, a truncated download...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HarnessError(
            f"ImageNet weights for {arch} are not at {path} and could not be downloaded ({reason}); "
            f"download {url} and place it at {path} (the torch hub cache, $TORCH_HOME), "
            f"or train from scratch with --no-pretrained"
        ) from None


def create_body(arch: str = "resnet34", pretrained: bool = True) -> tuple[nn.Sequential, int]:
    """The backbone without its pooling and classifier, and the number of channels it outputs."""
    import torchvision.models as tvm

    _check_arch(arch)
    net = getattr(tvm, BACKBONES[arch][0])(weights=None)
    if pretrained:
        url, path = weights_file(arch)
        if not path.exists():
            download_weights(arch, url, path)
        try:
            net.load_state_dict(load_weights(path))
        except RuntimeError as exc:  # another network's weights (keys or shapes differ)
            raise HarnessError(f"{path} does not hold {arch} weights ({str(exc).splitlines()[0]}); "
                               "delete it and download it again") from None
    channels = net.fc.in_features
    return nn.Sequential(*list(net.children())[:-2]), channels


class ConcatPool(nn.Module):
    """Adaptive max and average pooling concatenated and flattened: (N, C, H, W) -> (N, 2C)."""

    def forward(self, x):
        return torch.cat([torch.amax(x, dim=(2, 3)), torch.mean(x, dim=(2, 3))], dim=1)


def dropout_list(ps, xtra_fc) -> list[float]:
    """One dropout probability per linear layer of the head (the extra ones, then the final one).

    ``ps`` is a float (every layer), a one-element list (every layer) or one value per layer; None
    is the lesson's default: 0.25 before each extra layer and 0.5 before the final one.
    """
    n = len(xtra_fc) + 1
    if ps is None:
        ps = [0.25] * len(xtra_fc) + [0.5]
    ps = [float(ps)] if isinstance(ps, (int, float)) else [float(p) for p in ps]
    if len(ps) == 1:
        ps = ps * n
    if len(ps) != n:
        raise HarnessError(f"model.ps has {len(ps)} values for {n} linear layers (xtra_fc = {list(xtra_fc)} "
                           f"plus the final one); give one value, or {n}")
    for p in ps:
        if not 0.0 <= p < 1.0:
            raise HarnessError(f"model.ps: dropout probability {p} must lie in [0, 1)")
    return ps


def create_head(n_in: int, n_classes: int, ps=None, xtra_fc=(512,)) -> nn.Sequential:
    """The lesson's head: BatchNorm1d, Dropout (if p > 0), Linear per layer; ReLU between; LogSoftmax."""
    ps = dropout_list(ps, xtra_fc)
    sizes = [n_in, *xtra_fc, n_classes]
    layers: list[nn.Module] = []
    for i, (n_a, n_b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.BatchNorm1d(n_a))
        if ps[i] > 0:
            layers.append(nn.Dropout(ps[i]))
        layers.append(nn.Linear(n_a, n_b))
        layers.append(nn.ReLU(inplace=True) if i < len(sizes) - 2 else nn.LogSoftmax(dim=1))
    return nn.Sequential(*layers)


class VisionModel(nn.Module):
    """``head(pool(body(x)))``, returning log-probabilities per class."""

    def __init__(self, n_classes: int, arch: str = "resnet34", pretrained: bool = True, ps=None,
                 xtra_fc=(512,)):
        super().__init__()
        self.body, channels = create_body(arch, pretrained)
        self.pool = ConcatPool()
        self.head = create_head(2 * channels, n_classes, ps, xtra_fc)
        self.takes_features = False  # True inside cached_features(): inputs are pooled activations

    def features(self, x):
        """What the head sees: the pooled body activations (the cached ones)."""
        return self.pool(self.body(x))

    def forward(self, x):
        return self.head(x if self.takes_features else self.features(x))

    @contextlib.contextmanager
    def cached_features(self):
        """Within this block the model's inputs are cached activations (what ``features`` returns) and
        only the head runs. The trained module is still the whole model, so a checkpoint written
        meanwhile holds body and head, and resumes or loads into a full model like any other."""
        self.takes_features = True
        try:
            yield self
        finally:
            self.takes_features = False

    def body_frozen(self) -> bool:
        return not any(p.requires_grad for p in self.body.parameters())

    def train(self, mode: bool = True):
        # A frozen body keeps its batch-norm statistics too: it stays in eval mode, so it truly
        # does not change while the head trains.
        super().train(mode)
        if mode and self.body_frozen():
            self.body.eval()
        return self

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Early body layers, late body layers, head: for differential learning rates."""
        children = list(self.body.children())
        early = [p for m in children[:BODY_SPLIT] for p in m.parameters()]
        late = [p for m in children[BODY_SPLIT:] for p in m.parameters()]
        return [early, late, list(self.head.parameters())]


class FeatureExtractor(nn.Module):
    """The frozen part of a VisionModel, as a module of its own (for precomputing activations)."""

    def __init__(self, model: VisionModel):
        super().__init__()
        self.body, self.pool = model.body, model.pool

    def forward(self, x):
        return self.pool(self.body(x))
