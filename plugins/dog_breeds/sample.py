"""Small generated images in Kaggle's dog-breed layout, with classes a small network can tell apart.

Each "breed" is a coloured shape (disc, stripes, square, triangle...) at a random place and size on a
noisy background, with jittered colours: easy for a CNN, impossible by pixel position alone.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from harness.workspace import atomic_path, write_csv

# breed -> (shape, RGB colour)
BREEDS = {
    "beagle": ("disc", (210, 50, 40)),
    "boxer": ("hstripes", (40, 70, 220)),
    "pug": ("square", (40, 180, 60)),
    "whippet": ("triangle", (230, 200, 30)),
    "basenji": ("vstripes", (170, 60, 200)),
    "papillon": ("ring", (30, 200, 200)),
}


def draw_breed(breed: str, size: int, rng: np.random.Generator) -> Image.Image:
    shape, colour = BREEDS[breed]
    background = rng.normal(128, 30, (size, size, 3)).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    jitter = rng.integers(-25, 26, 3)
    fill = tuple(int(c) for c in np.clip(np.array(colour) + jitter, 0, 255))
    extent = int(size * rng.uniform(0.45, 0.8))
    x0, y0 = (int(v) for v in rng.integers(0, size - extent + 1, 2))
    x1, y1 = x0 + extent, y0 + extent
    band = max(2, extent // 7)
    if shape == "disc":
        draw.ellipse([x0, y0, x1, y1], fill=fill)
    elif shape == "ring":
        draw.ellipse([x0, y0, x1, y1], outline=fill, width=band)
    elif shape == "square":
        draw.rectangle([x0, y0, x1, y1], fill=fill)
    elif shape == "triangle":
        draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=fill)
    elif shape == "hstripes":
        for y in range(y0, y1, 2 * band):
            draw.rectangle([x0, y, x1, y + band - 1], fill=fill)
    elif shape == "vstripes":
        for x in range(x0, x1, 2 * band):
            draw.rectangle([x, y0, x + band - 1, y1], fill=fill)
    return image


def _save_jpeg(image: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="JPEG", quality=90)


def write_sample(data_dir: Path, seed: int = 0, n_breeds: int = 4, n_per_breed: int = 40, n_test: int = 40,
                 size: int = 64) -> None:
    """labels.csv (id,breed), train/<id>.jpg, test/<id>.jpg and sample_submission.csv."""
    rng = np.random.default_rng(seed)
    data_dir = Path(data_dir)
    breeds = list(BREEDS)[:n_breeds]
    n_train = n_breeds * n_per_breed
    ids = [rng.bytes(16).hex() for _ in range(n_train + n_test)]  # Kaggle's ids: 32 hex digits
    train_ids, test_ids = ids[:n_train], sorted(ids[n_train:])
    labels = [breeds[i % n_breeds] for i in range(n_train)]
    order = rng.permutation(n_train)
    labels = pd.DataFrame({"id": [train_ids[i] for i in order], "breed": [labels[i] for i in order]})
    for image_id, breed in zip(labels["id"], labels["breed"]):
        _save_jpeg(draw_breed(breed, size, rng), data_dir / "train" / f"{image_id}.jpg")
    for image_id in test_ids:
        breed = breeds[int(rng.integers(0, n_breeds))]
        _save_jpeg(draw_breed(breed, size, rng), data_dir / "test" / f"{image_id}.jpg")
    write_csv(data_dir / "labels.csv", labels)
    columns = sorted(breeds)
    sample = pd.DataFrame({"id": test_ids, **{b: 1.0 / len(columns) for b in columns}})
    write_csv(data_dir / "sample_submission.csv", sample)
