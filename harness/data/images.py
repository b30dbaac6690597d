"""Images on disk: checked decoding, transforms, loaders, test-time augmentation, and an on-disk
cache of a frozen network's activations.

The cache is what makes the lesson's ``precompute=True`` cheap: the frozen backbone sees every
image once; afterwards the head trains on the stored activations at matrix speed. A cached row is
keyed by the image's content, the network (its name and a digest of its weights) and the transform,
so changing any of them recomputes exactly what is stale.
"""
from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import torch
from PIL import Image, UnidentifiedImageError
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from harness.data.loaders import check_split, shard_slices
from harness.errors import HarnessError
from harness.progress import echo, progress_bar
from harness.workspace import torch_save, write_json

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------- decoding
def decode_image(path, size: int | None = None, data: bytes | None = None) -> Image.Image:
    """An RGB image; a corrupt or unreadable file is a HarnessError naming it.

    ``size`` lets JPEG decode at a reduced scale that still covers ``size`` pixels per side (much
    faster for large photos and small training sizes).
    """
    try:
        image = Image.open(io.BytesIO(data) if data is not None else path)
        if size:
            image.draft("RGB", (size, size))
        return image.convert("RGB")
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HarnessError(f"{path}: cannot decode this image ({reason}); replace or remove the file, "
                           "or set data.corrupt_images = \"skip\" to leave such images out") from None


def _check_one(path) -> str | None:
    try:
        decode_image(path, size=32)
        return None
    except HarnessError as exc:
        return str(exc)


def scan_images(paths: Sequence, on_error: str = "error", desc: str = "checking images") -> list[bool]:
    """Decode every image once (at a small scale); which ones are readable.

    ``on_error="error"`` raises the HarnessError of the first bad file; ``"skip"`` warns with the
    count and the first file, and returns the mask so the caller can leave the bad ones out.
    """
    if on_error not in ("error", "skip"):
        raise HarnessError(f"data.corrupt_images = {on_error!r}: use \"error\" or \"skip\"")
    with ThreadPoolExecutor(max_workers=4) as pool:  # Pillow releases the GIL while decoding
        # A bar only for many images (and only on a terminal): a small check is over in a blink.
        errors = list(progress_bar(pool.map(_check_one, paths), total=len(paths), desc=desc, unit="image",
                                   disable=True if len(paths) < 500 else None))
    bad = [e for e in errors if e is not None]
    if bad and on_error == "error":
        raise HarnessError(bad[0] if len(bad) == 1 else f"{bad[0]} ({len(bad)} unreadable images in all)")
    if bad:
        echo(f"warning: skipped {len(bad)} unreadable image(s), first: {bad[0].split(': cannot')[0]}", err=True)
    return [e is None for e in errors]


# ---------------------------------------------------------------------- transforms
def eval_transform(size: int):
    """Resize the shorter side to ``size``, centre crop, normalise with ImageNet statistics."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def train_transform(size: int, min_scale: float = 0.35, flip: bool = True):
    """Data augmentation: a random crop of ``min_scale``..1 of the image, resized to ``size``; flips."""
    from torchvision import transforms as T

    steps = [T.RandomResizedCrop(size, scale=(min_scale, 1.0))]
    if flip:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return T.Compose(steps)


# ---------------------------------------------------------------------- loaders
class ImageDataset(Dataset):
    """(image tensor, label) per file; label -1 where there is none (test images)."""

    def __init__(self, paths: Sequence, labels: Sequence[int] | None, transform, draft_size: int | None = None):
        self.paths = [Path(p) for p in paths]
        self.labels = list(labels) if labels is not None else [-1] * len(self.paths)
        self.transform, self.draft_size = transform, draft_size

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        image = decode_image(self.paths[i], self.draft_size)
        return self.transform(image), self.labels[i]


class RankBatches(Sampler):
    """Batches of image indices in ``sampler``'s order (torch's shuffled or sequential sampler), and under
    data-parallel training this process's share of them (``harness.data.loaders.shard_slices``: the same
    global batches as one process with ``processes x batch_size``). torch's DistributedSampler instead
    strides the rows, pads the last batch with repeated images and reshuffles from ``seed + epoch``, which
    would not give one process's batches nor keep the loader's own generator (and so its resume state)."""

    def __init__(self, sampler, batch_size: int, drop_last_single: bool):
        self.sampler, self.batch_size, self.drop_last_single = sampler, batch_size, drop_last_single
        self.rank, self.world, self.whole_batches = 0, 1, True

    def slices(self) -> list[slice]:
        return shard_slices(len(self.sampler), self.batch_size, self.rank, self.world, self.whole_batches,
                            drop_last_single=self.drop_last_single)

    def __len__(self) -> int:
        return len(self.slices())

    def __iter__(self):
        order = list(self.sampler)  # drawn when the first batch is asked for, as torch's BatchSampler does
        for sl in self.slices():
            yield order[sl]


class ImageLoader(DataLoader):
    """A DataLoader that owns the generator of its shuffle order (and of its worker seeds), advanced
    each epoch; the Learner saves and restores it with every checkpoint, so a resumed run continues
    the sequence of orders instead of replaying the first one. ``split_over(rank, world)`` makes it
    yield one process's share of the batches."""

    def split_over(self, rank: int, world: int, whole_batches: bool = True) -> None:
        batches = self.batch_sampler
        if world > 1 and whole_batches:
            check_split(len(batches.sampler), batches.batch_size, world)
        batches.rank, batches.world, batches.whole_batches = rank, world, whole_batches

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()} if self.generator is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.generator is not None and state.get("generator") is not None:
            self.generator.set_state(state["generator"])


def image_loader(paths, labels, transform, batch_size=64, shuffle=False, num_workers=0, seed=0,
                 draft_size=None, drop_last_single: bool | None = None) -> ImageLoader:
    """Batches of (images, labels). ``shuffle=True`` makes a training loader: shuffled from its own
    generator (seeded with ``seed``), and, as TensorLoader's training loaders, it drops a last batch
    of one image (``drop_last_single``, by default when ``shuffle``): BatchNorm cannot train on it."""
    dataset = ImageDataset(paths, labels, transform, draft_size)
    drop_single = shuffle if drop_last_single is None else drop_last_single
    # Loaders that do not shuffle (validation, test, TTA) draw worker seeds from the global generator,
    # so that each augmented TTA pass differs.
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    return ImageLoader(dataset, batch_sampler=RankBatches(sampler, batch_size, drop_single), num_workers=num_workers,
                       generator=generator, persistent_workers=False, pin_memory=torch.cuda.is_available())


@torch.no_grad()
def predict_tta(learn, make_loader: Callable[[bool], DataLoader], n_aug: int = 4, seed: int = 0) -> torch.Tensor:
    """Class probabilities averaged over the plain images and ``n_aug`` augmented passes.

    ``make_loader(augment)`` gives the loader for one pass; the model returns log-probabilities.
    The augmentations are drawn from ``seed``, so predicting twice gives the same answer, and the
    caller's random state is left as it was.
    """
    # Augmentations run on the CPU (Pillow transforms; worker seeds come from the CPU generator), so
    # only the CPU generator is seeded and restored: CUDA's is never touched (torch.manual_seed would
    # reseed it and fork_rng(devices=[]) would not put it back).
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        probs = learn.predict(make_loader(False)).exp()
        for _ in range(n_aug):
            probs += learn.predict(make_loader(True)).exp()
    return probs / (n_aug + 1)


# ---------------------------------------------------------------------- the activation cache
def file_digest(path) -> str:
    """A digest of the file's bytes: the cache key of an image, whatever its name or mtime."""
    return hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()


def module_fingerprint(module: nn.Module) -> str:
    """A digest of a module's weights and buffers: changes whenever the network would."""
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class ActivationCache:
    """Rows of activations on disk, one per image key, for one (network, transform) pair.

    Each pair has its own folder under ``root``; a different network or transform therefore finds
    nothing and recomputes. Within a folder, only the keys not stored yet are computed and added.
    """

    def __init__(self, root, model_key: str, transform_key: str):
        digest = hashlib.blake2b(f"{model_key}\n{transform_key}".encode(), digest_size=8).hexdigest()
        self.folder = Path(root) / digest
        self.file = self.folder / "activations.pt"
        self.model_key, self.transform_key = model_key, transform_key
        self.hits = self.computed = 0  # of the last get(): rows reused and rows computed

    def _load(self) -> tuple[list[str], torch.Tensor | None]:
        if not self.file.exists():
            return [], None
        try:
            stored = torch.load(self.file, map_location="cpu", weights_only=True)
            return list(stored["keys"]), stored["activations"]
        except Exception:  # unreadable cache: recompute rather than fail
            return [], None

    def get(self, keys: Sequence[str], compute: Callable[[list[int]], torch.Tensor]) -> torch.Tensor:
        """Activations for ``keys`` in order; ``compute(indices)`` gives the rows missing from disk."""
        stored_keys, stored = self._load()
        row_of = {k: i for i, k in enumerate(stored_keys)}
        missing = [i for i, k in enumerate(keys) if k not in row_of]
        # Duplicate images (same bytes) are computed once.
        first_index = {}
        for i in missing:
            first_index.setdefault(keys[i], i)
        to_compute = list(first_index.values())
        self.computed, self.hits = len(to_compute), len(keys) - len(missing)
        if to_compute:
            new = compute(to_compute).float().cpu()
            for j, i in enumerate(to_compute):
                row_of[keys[i]] = len(stored_keys) + j
            stored_keys = stored_keys + [keys[i] for i in to_compute]
            stored = new if stored is None else torch.cat([stored, new])
            torch_save({"keys": stored_keys, "activations": stored}, self.file)
            write_json(self.folder / "about.json", {"model": self.model_key, "transform": self.transform_key,
                                                    "rows": len(stored_keys)})
        if not keys:
            return torch.empty(0, 0)
        return stored[torch.tensor([row_of[k] for k in keys])]


@torch.no_grad()
def compute_activations(extractor: nn.Module, paths: Sequence, transform, device="cpu", batch_size=64,
                        num_workers=0, draft_size=None, desc="activations") -> torch.Tensor:
    """The extractor's outputs for every image, in eval mode, batch by batch (a progress bar).

    Convolutions run in channels-last memory layout (faster with oneDNN and cuDNN); the extractor's
    weights are put back in the usual layout afterwards.
    """
    extractor.eval().to(memory_format=torch.channels_last)
    loader = image_loader(paths, None, transform, batch_size=batch_size, num_workers=num_workers,
                          draft_size=draft_size)
    outs = []
    # The loader draws its worker seed from the global generator: put it back, so that a run gives the
    # same result whether its activations were computed now or found in the cache.
    with torch.random.fork_rng(devices=[]):
        try:
            for xb, _ in progress_bar(loader, desc=desc, unit="batch"):
                xb = xb.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                outs.append(extractor(xb).float().cpu())
        finally:
            extractor.to(memory_format=torch.contiguous_format)
    return torch.cat(outs)


def precompute_activations(extractor: nn.Module, paths: Sequence, transform, cache_root, model_name: str,
                           device="cpu", batch_size=64, num_workers=0, draft_size=None
                           ) -> tuple[torch.Tensor, ActivationCache]:
    """Activations of a frozen ``extractor`` for ``paths``, from the cache where it has them."""
    model_key = f"{model_name}:{module_fingerprint(extractor)}"
    transform_key = f"{transform!r} draft={draft_size}"
    cache = ActivationCache(cache_root, model_key, transform_key)
    keys = [file_digest(p) for p in paths]

    def compute(indices):
        return compute_activations(extractor, [paths[i] for i in indices], transform, device, batch_size,
                                   num_workers, draft_size, desc=f"precomputing {len(indices)} activations")

    return cache.get(keys, compute), cache
