"""Dog breeds speed: the activation precompute against a bare torchvision loop, and a head epoch on
cached activations against an epoch through the frozen backbone.

No Kaggle images exist on these machines, so the images are generated (the sample writer's shapes)
at 224 px and saved as JPEG; ResNet-34 with random weights times the same as with ImageNet weights.

    python bench/dog_breeds_speed.py --n-images 128 --repeats 3 --threads 1

Targets: precompute images/s >= 0.9 x the bare loop's; head epoch on the cache >= 10 x faster than
an epoch that runs the frozen backbone on every image.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn


def make_images(folder: Path, n: int, size: int, seed: int = 0) -> tuple[list[Path], list[int]]:
    from harness_plugins.dog_breeds.sample import BREEDS, draw_breed

    rng = np.random.default_rng(seed)
    breeds = list(BREEDS)
    folder.mkdir(parents=True, exist_ok=True)
    paths, labels = [], []
    for i in range(n):
        label = i % len(breeds)
        path = folder / f"{i:05d}.jpg"
        draw_breed(breeds[label], size, rng).save(path, quality=90)
        paths.append(path)
        labels.append(label)
    return paths, labels


def bare_torchvision_loop(paths, size, batch_size, workers) -> float:
    """What one writes by hand: PIL + torchvision transforms, a DataLoader, the model forward. Seconds."""
    import torchvision
    from PIL import Image
    from torchvision import transforms as T

    tf = T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(),
                    T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return len(paths)

        def __getitem__(self, i):
            return tf(Image.open(paths[i]).convert("RGB"))

    torch.manual_seed(0)
    net = torchvision.models.resnet34()
    net.fc = nn.Identity()
    net.eval()
    loader = torch.utils.data.DataLoader(Images(), batch_size=batch_size, num_workers=workers)
    start = time.perf_counter()
    with torch.no_grad():
        for xb in loader:
            net(xb)
    return time.perf_counter() - start


def harness_precompute(paths, size, batch_size, workers, cache_root) -> tuple[float, torch.Tensor]:
    """harness.data.images.precompute_activations on an empty cache: hashing, decoding, forward, saving.

    (It runs the convolutions in channels-last layout; the bare loop above does not.)"""
    from harness.data.images import eval_transform, precompute_activations
    from harness.models.vision import FeatureExtractor, VisionModel

    torch.manual_seed(0)
    extractor = FeatureExtractor(VisionModel(len(paths), "resnet34", pretrained=False))
    shutil.rmtree(cache_root, ignore_errors=True)
    start = time.perf_counter()
    acts, cache = precompute_activations(extractor, paths, eval_transform(size), cache_root, "resnet34",
                                         batch_size=batch_size, num_workers=workers, draft_size=size)
    elapsed = time.perf_counter() - start
    assert cache.computed == len(paths)
    return elapsed, acts


def warm_cache(paths, size, batch_size, workers, cache_root) -> float:
    from harness.data.images import eval_transform, precompute_activations
    from harness.models.vision import FeatureExtractor, VisionModel

    torch.manual_seed(0)
    extractor = FeatureExtractor(VisionModel(len(paths), "resnet34", pretrained=False))
    start = time.perf_counter()
    _, cache = precompute_activations(extractor, paths, eval_transform(size), cache_root, "resnet34",
                                      batch_size=batch_size, num_workers=workers, draft_size=size)
    assert cache.hits == len(paths)
    return time.perf_counter() - start


def head_epoch_on_cache(acts, labels, batch_size) -> float:
    from harness.data.loaders import TensorLoader
    from harness.models.vision import create_head
    from harness.train import Learner

    head = create_head(acts.shape[1], 120)
    dl = TensorLoader(acts, torch.tensor(labels), batch_size=batch_size, shuffle=True)
    learn = Learner(head, dl, None, nn.NLLLoss(), device="cpu")
    learn.fit(1, 1e-2)  # warm-up
    start = time.perf_counter()
    learn.fit(1, 1e-2)
    return time.perf_counter() - start


def head_epoch_through_frozen_body(paths, labels, size, batch_size, workers) -> float:
    """Training the head without the cache: every batch of augmented images runs the frozen backbone."""
    from harness.data.images import image_loader, train_transform
    from harness.models.vision import VisionModel
    from harness.train import Learner

    torch.manual_seed(0)
    model = VisionModel(120, "resnet34", pretrained=False)
    dl = image_loader(paths, labels, train_transform(size), batch_size, shuffle=True, num_workers=workers,
                      draft_size=size)
    learn = Learner(model, dl, None, nn.NLLLoss(), layer_groups=model.layer_groups(), device="cpu")
    learn.freeze()
    start = time.perf_counter()
    learn.fit(1, 1e-2)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=128)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader processes (the same for both loops)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the best of each is reported")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    scratch = Path(tempfile.mkdtemp(prefix="dog-bench-"))
    try:
        paths, labels = make_images(scratch / "images", args.n_images, args.size)
        n = len(paths)
        bare, ours = [], []
        acts = None
        for _ in range(args.repeats):  # interleaved, so a busy neighbour slows both alike
            bare.append(bare_torchvision_loop(paths, args.size, args.batch_size, args.workers))
            elapsed, acts = harness_precompute(paths, args.size, args.batch_size, args.workers, scratch / "cache")
            ours.append(elapsed)
        warm = warm_cache(paths, args.size, args.batch_size, args.workers, scratch / "cache")
        head = min(head_epoch_on_cache(acts, labels, 64) for _ in range(3))
        full = head_epoch_through_frozen_body(paths, labels, args.size, args.batch_size, args.workers)

        print(f"images: {n} generated JPEGs at {args.size} px; resnet34 (random weights); batch {args.batch_size}; "
              f"workers {args.workers}; torch threads {torch.get_num_threads()}; torch {torch.__version__}")
        print("\n| measurement | seconds (each repeat) | images/s (best) |")
        print("|---|---|---|")
        print(f"| bare torchvision forward loop | {', '.join(f'{t:.2f}' for t in bare)} | {n / min(bare):.1f} |")
        print(f"| harness precompute (empty cache) | {', '.join(f'{t:.2f}' for t in ours)} | {n / min(ours):.1f} |")
        print(f"| harness precompute (warm cache) | {warm:.3f} | {n / warm:.0f} |")
        print(f"\nprecompute / bare loop images/s: {min(bare) / min(ours):.3f} (target >= 0.9)")
        print("\n| head training epoch | seconds |")
        print("|---|---|")
        print(f"| on cached activations ({n} rows, batch 64) | {head:.4f} |")
        print(f"| through the frozen backbone (augmented images, batch {args.batch_size}) | {full:.2f} |")
        print(f"\nspeed-up of the cached head epoch: {full / head:.0f}x (target >= 10x)")
        print(f"(median bare {statistics.median(bare):.2f} s, median precompute {statistics.median(ours):.2f} s)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
