"""A small synthetic MovieLens in the ml-100k file layout, with a real low-rank structure to learn."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.workspace import atomic_path, write_csv

GENRES = 19


def write_sample(data_dir: Path, seed: int = 0, n_users: int = 500, n_items: int = 300, n_ratings: int = 30000):
    rng = np.random.default_rng(seed)
    data_dir.mkdir(parents=True, exist_ok=True)
    k = 4
    user_f, item_f = rng.normal(0, 0.6, (n_users, k)), rng.normal(0, 0.6, (n_items, k))
    user_b, item_b = rng.normal(0, 0.4, n_users), rng.normal(0, 0.5, n_items)
    # Popular items get more ratings, as in the real data.
    popularity = rng.zipf(1.6, n_items).astype(float)
    popularity /= popularity.sum()
    pairs = set()
    while len(pairs) < n_ratings:
        users = rng.integers(0, n_users, n_ratings)
        items = rng.choice(n_items, n_ratings, p=popularity * 0.5 + 0.5 / n_items)
        pairs.update(zip(users.tolist(), items.tolist()))
    pairs = sorted(pairs)[: n_ratings * 2]
    rng.shuffle(pairs)
    pairs = np.array(pairs[:n_ratings])
    u, i = pairs[:, 0], pairs[:, 1]
    score = 3.5 + user_b[u] + item_b[i] + (user_f[u] * item_f[i]).sum(1) + rng.normal(0, 0.3, len(u))
    rating = np.clip(np.round(score), 1, 5).astype(int)
    stamps = rng.integers(874724710, 893286638, len(u))
    ratings = pd.DataFrame({"user": u + 1, "item": i + 1, "rating": rating, "timestamp": stamps})

    n_test = len(ratings) // 10
    test, train = ratings.iloc[:n_test], ratings.iloc[n_test:]
    with atomic_path(data_dir / "u.data") as tmp:
        train.to_csv(tmp, sep="\t", header=False, index=False)
    titles = [f"Sample Movie {j + 1} ({1950 + j % 50})" for j in range(n_items)]
    lines = [f"{j + 1}|{titles[j]}|01-Jan-{1950 + j % 50}||http://example.invalid/{j + 1}|"
             + "|".join("1" if g == j % GENRES else "0" for g in range(GENRES)) for j in range(n_items)]
    with atomic_path(data_dir / "u.item") as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="latin-1")
    # A predefined split in the ml-100k way, so `data.split = "u1"` works on the sample too.
    cut = int(len(train) * 0.8)
    for name, part in (("u1.base", train.iloc[:cut]), ("u1.test", train.iloc[cut:])):
        with atomic_path(data_dir / name) as tmp:
            part.to_csv(tmp, sep="\t", header=False, index=False)
    # The pairs to predict, plus a few ids never seen in training; their answers in solution.csv.
    extra = pd.DataFrame({"user": [n_users + 1, 1], "item": [1, n_items + 1], "rating": [3, 3], "timestamp": [0, 0]})
    test = pd.concat([test, extra], ignore_index=True)
    ids = np.arange(1, len(test) + 1)
    write_csv(data_dir / "test.csv", pd.DataFrame({"id": ids, "userId": test["user"], "movieId": test["item"]}))
    write_csv(data_dir / "solution.csv", pd.DataFrame({"id": ids, "rating": test["rating"]}))
