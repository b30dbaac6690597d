"""The vision pieces: the lesson's head, backbones and their weights, freezing, image decoding and
the on-disk activation cache."""
from __future__ import annotations

import hashlib
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from harness.data.images import (
    ActivationCache, compute_activations, decode_image, eval_transform, image_loader, precompute_activations,
    predict_tta, scan_images, train_transform,
)
from harness.data.loaders import TensorLoader
from harness.errors import HarnessError
from harness.models import vision
from harness.models.vision import (
    FeatureExtractor, VisionModel, create_body, create_head, hash_prefix, load_weights, weights_file,
)
from harness.train import Learner

REAL_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "dog-breed-identification" / "extra_real_jpgs_not_kaggle"


def layer_types(head: nn.Sequential) -> list[str]:
    return [type(m).__name__ for m in head]


# ---------------------------------------------------------------------- the head
def test_default_head_is_the_lessons():
    head = create_head(1024, 7)
    assert layer_types(head) == ["BatchNorm1d", "Dropout", "Linear", "ReLU",
                                 "BatchNorm1d", "Dropout", "Linear", "LogSoftmax"]
    assert [m.p for m in head if isinstance(m, nn.Dropout)] == [0.25, 0.5]
    assert [(m.in_features, m.out_features) for m in head if isinstance(m, nn.Linear)] == [(1024, 512), (512, 7)]
    head.eval()
    out = head(torch.randn(5, 1024))
    assert out.shape == (5, 7)
    assert torch.allclose(out.exp().sum(1), torch.ones(5), atol=1e-5)  # log-probabilities


def test_head_without_extra_layers_or_dropout():
    assert layer_types(create_head(64, 3, ps=0.5, xtra_fc=[])) == ["BatchNorm1d", "Dropout", "Linear", "LogSoftmax"]
    assert layer_types(create_head(64, 3, ps=0, xtra_fc=[])) == ["BatchNorm1d", "Linear", "LogSoftmax"]
    no_dropout = create_head(64, 3, ps=[0.0], xtra_fc=[32, 16])
    assert "Dropout" not in layer_types(no_dropout)
    assert layer_types(no_dropout).count("ReLU") == 2


def test_head_dropout_per_layer():
    head = create_head(64, 3, ps=[0.1, 0.0, 0.3], xtra_fc=[32, 16])
    assert [m.p for m in head if isinstance(m, nn.Dropout)] == [0.1, 0.3]
    assert layer_types(head) == ["BatchNorm1d", "Dropout", "Linear", "ReLU", "BatchNorm1d", "Linear", "ReLU",
                                 "BatchNorm1d", "Dropout", "Linear", "LogSoftmax"]
    assert [m.p for m in create_head(64, 3, ps=0.2, xtra_fc=[32, 16]) if isinstance(m, nn.Dropout)] == [0.2] * 3
    with pytest.raises(HarnessError, match="model.ps has 2 values for 3"):
        create_head(64, 3, ps=[0.1, 0.2], xtra_fc=[32, 16])
    with pytest.raises(HarnessError, match=r"\[0, 1\)"):
        create_head(64, 3, ps=1.0)


# ---------------------------------------------------------------------- backbones
def test_model_concat_pool_and_layer_groups():
    model = VisionModel(5, "resnet18", pretrained=False, xtra_fc=[])
    assert model.head[0].num_features == 2 * 512  # max and average pooling side by side
    model.eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    groups = model.layer_groups()
    assert len(groups) == 3
    ids = [id(p) for g in groups for p in g]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert {id(p) for p in groups[2]} == {id(p) for p in model.head.parameters()}
    with pytest.raises(HarnessError, match="model.arch"):
        VisionModel(5, "vgg99", pretrained=False)


def offline(*args, **kwargs):
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def test_missing_weights_offline_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(HarnessError) as info:
        create_body("resnet34", pretrained=True)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "hub" / "checkpoints" / "resnet34-b627a593.pth") in message
    assert "--no-pretrained" in message


def test_download_gets_the_hash_in_the_name_and_is_checked_again(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = torchvision.models.resnet18()
    asked = []

    def fake_download(url, dst, hash_prefix=None, progress=True):  # what torch.hub does, without the network
        asked.append((url, Path(dst).name, hash_prefix))
        torch.save(reference.state_dict(), dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    url, path = weights_file("resnet18")
    # The downloaded file is checked again on loading, so give it a name that carries its own hash.
    monkeypatch.setattr(vision, "weights_file", lambda arch: (url, tmp_path / "resnet18-00000000.pth"))
    with pytest.raises(HarnessError, match="does not match the hash in its name"):
        create_body("resnet18", pretrained=True)
    assert asked == [(url, "resnet18-00000000.pth", "00000000")]
    assert (url, path.name, hash_prefix(path)) == (url, "resnet18-f37072fd.pth", "f37072fd")


def named_by_hash(folder: Path, state, stem="resnet18") -> Path:
    """Save ``state`` under a torchvision-style name ending in the first 8 hex digits of its SHA-256."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "tmp.pth"
    torch.save(state, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    return tmp.rename(folder / f"{stem}-{digest[:8]}.pth")


def test_weights_placed_by_hand_with_their_hash_load(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(1)
    reference = torchvision.models.resnet18()
    path = named_by_hash(tmp_path / "hub" / "checkpoints", reference.state_dict())
    monkeypatch.setattr(vision, "weights_file", lambda arch: ("https://example.invalid/" + path.name, path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)  # present: nothing is downloaded
    torch.manual_seed(2)
    body, channels = create_body("resnet18", pretrained=True)
    assert channels == 512
    assert torch.equal(body[0].weight, reference.conv1.weight)
    assert torch.equal(body[7][1].bn2.running_var, reference.layer4[1].bn2.running_var)


def test_weights_placed_by_hand_with_another_hash_are_refused(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    _, path = weights_file("resnet18")  # resnet18-f37072fd.pth
    path.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), path)  # right format, not ImageNet's file
    with pytest.raises(HarnessError) as info:
        create_body("resnet18", pretrained=True)
    message = str(info.value)
    assert message.startswith(f"{path} does not match the hash in its name (SHA-256 should start with f37072fd")
    assert "download it again" in message and "\n" not in message


class RunsCode:
    """Unpickling this runs Path.touch: what a hostile file could do with weights_only=False."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def test_weights_file_holding_code_is_refused_unrun(tmp_path):
    marker = tmp_path / "code-ran"
    path = named_by_hash(tmp_path / "hub" / "checkpoints", {"conv1.weight": RunsCode(marker)})
    with pytest.raises(HarnessError, match=r"cannot be read as a weights file .*download it again"):
        load_weights(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the test's own check: the file does run code when trusted
    assert marker.exists()


def test_weights_file_cut_short_is_refused(tmp_path):
    path = named_by_hash(tmp_path, {"w": torch.arange(1000.0)})
    data = path.read_bytes()[:300]
    cut = tmp_path / f"w-{hashlib.sha256(data).hexdigest()[:8]}.pth"  # its name carries its own hash
    cut.write_bytes(data)
    with pytest.raises(HarnessError, match="cannot be read as a weights file"):
        load_weights(cut)
    empty = tmp_path / "w-e3b0c442.pth"
    empty.write_bytes(b"")
    with pytest.raises(HarnessError, match="is empty"):
        load_weights(empty)
    assert torch.equal(load_weights(path)["w"], torch.arange(1000.0))


def test_frozen_body_does_not_change():
    torch.manual_seed(0)
    model = VisionModel(3, "resnet18", pretrained=False)
    x, y = torch.randn(48, 3, 32, 32), torch.randint(0, 3, (48,))
    learn = Learner(model, TensorLoader(x, y, batch_size=16, shuffle=True), None, nn.NLLLoss(),
                    layer_groups=model.layer_groups(), device="cpu")
    body_before = {k: v.clone() for k, v in model.body.state_dict().items()}
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    learn.freeze()
    learn.fit(1, 1e-2)
    # Weights and batch-norm statistics of the frozen body are untouched; the head learned.
    assert all(torch.equal(v, model.body.state_dict()[k]) for k, v in body_before.items())
    assert any(not torch.equal(v, model.head.state_dict()[k]) for k, v in head_before.items())
    learn.unfreeze()
    learn.fit(1, 1e-3)
    assert any(not torch.equal(v, model.body.state_dict()[k]) for k, v in body_before.items())


# ---------------------------------------------------------------------- decoding
def write_images(folder: Path, n: int, size: int = 32, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"img{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def test_corrupt_images_name_their_file(tmp_path, capsys):
    paths = write_images(tmp_path, 4)
    garbage, truncated = tmp_path / "garbage.jpg", tmp_path / "truncated.jpg"
    garbage.write_bytes(b"this is not a jpeg")
    truncated.write_bytes(paths[0].read_bytes()[:300])
    for bad in (garbage, truncated):
        with pytest.raises(HarnessError, match=f"{bad.name}: cannot decode"):
            decode_image(bad)
    with pytest.raises(HarnessError, match="garbage.jpg.*2 unreadable images"):
        scan_images([*paths, garbage, truncated])
    assert scan_images([*paths, garbage, truncated], on_error="skip") == [True] * 4 + [False, False]
    assert "skipped 2 unreadable image(s)" in capsys.readouterr().err
    with pytest.raises(HarnessError, match="corrupt_images"):
        scan_images(paths, on_error="ignore")


def test_transforms_shapes_and_draft_decoding(tmp_path):
    (path,) = write_images(tmp_path, 1, size=200)
    small = decode_image(path, size=48)
    assert min(small.size) >= 48 and small.mode == "RGB"
    assert small.size[0] < 200  # JPEG decoded at a reduced scale
    assert eval_transform(48)(small).shape == (3, 48, 48)
    assert train_transform(48)(small).shape == (3, 48, 48)


def test_real_dog_photos_load():
    photos = sorted(REAL_PHOTOS.glob("*.jpg")) if REAL_PHOTOS.is_dir() else []
    if not photos:
        pytest.skip(f"the real dog photos are not at {REAL_PHOTOS} (only on machines with the shared data)")
    assert scan_images(photos) == [True] * len(photos)
    for photo in photos:
        image = decode_image(photo, size=64)
        assert min(image.size) >= 64
        x = eval_transform(64)(image)
        assert x.shape == (3, 64, 64) and torch.isfinite(x).all() and x.std() > 0.1
    extractor = FeatureExtractor(VisionModel(2, "resnet18", pretrained=False))
    acts = compute_activations(extractor, photos, eval_transform(64), draft_size=64)
    assert acts.shape == (len(photos), 1024)


# ---------------------------------------------------------------------- activation cache
def test_activation_cache_reused_and_invalidated(tmp_path):
    torch.manual_seed(0)
    paths = write_images(tmp_path / "images", 6)
    extractor = FeatureExtractor(VisionModel(2, "resnet18", pretrained=False))
    root = tmp_path / "cache"

    def run(paths=paths, size=32, model=extractor):
        acts, cache = precompute_activations(model, paths, eval_transform(size), root, "resnet18", batch_size=4)
        return acts, cache

    first, cache = run()
    assert (cache.computed, cache.hits) == (6, 0)
    assert torch.allclose(first, compute_activations(extractor, paths, eval_transform(32)), atol=1e-5)

    again, cache = run()
    assert (cache.computed, cache.hits) == (0, 6)
    assert torch.equal(again, first)
    subset, cache = run(paths[::-1][:3])  # any subset and order comes from the same rows
    assert (cache.computed, cache.hits) == (0, 3) and torch.equal(subset, first.flip(0)[:3])

    # A changed image is recomputed, and only it.
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(paths[2], quality=90)
    changed, cache = run()
    assert (cache.computed, cache.hits) == (1, 5)
    assert not torch.equal(changed[2], first[2]) and torch.equal(changed[[0, 1, 3, 4, 5]], first[[0, 1, 3, 4, 5]])

    # A different transform or different weights find nothing to reuse.
    _, cache = run(size=40)
    assert (cache.computed, cache.hits) == (6, 0)
    with torch.no_grad():
        extractor.body[0].weight[0, 0, 0, 0] += 0.5
    _, cache = run()
    assert (cache.computed, cache.hits) == (6, 0)
    assert len([p for p in root.iterdir() if p.is_dir()]) == 3


def test_activation_cache_computes_duplicates_once(tmp_path):
    cache = ActivationCache(tmp_path, "model", "transform")
    asked = []

    def compute(indices):
        asked.append(indices)
        return torch.tensor([[float(i)] for i in indices])

    out = cache.get(["a", "b", "a", "c"], compute)
    assert asked == [[0, 1, 3]] and out.flatten().tolist() == [0.0, 1.0, 0.0, 3.0]
    out = cache.get(["c", "d"], compute)
    assert asked[-1] == [1] and out.flatten().tolist() == [3.0, 1.0]
    assert (cache.computed, cache.hits) == (1, 1)


# ---------------------------------------------------------------------- loaders and TTA
def epoch_order(loader) -> list[int]:
    return [int(i) for _, yb in loader for i in yb]


def test_image_loader_restored_continues_the_shuffle_sequence(tmp_path):
    paths = write_images(tmp_path, 10, size=16)
    make = lambda: image_loader(paths, list(range(10)), eval_transform(16), batch_size=4, shuffle=True, seed=3)
    uninterrupted = make()
    first = epoch_order(uninterrupted)
    saved = uninterrupted.state_dict()  # what a checkpoint after epoch 1 holds
    second = epoch_order(uninterrupted)
    assert sorted(first) == sorted(second) == list(range(10)) and first != second

    resumed = make()
    resumed.load_state_dict(saved)
    assert epoch_order(resumed) == second
    assert epoch_order(make()) == first  # without the state a new loader replays epoch 1


def test_training_image_loader_drops_a_last_batch_of_one(tmp_path):
    paths = write_images(tmp_path, 9, size=16)
    train = image_loader(paths, list(range(9)), eval_transform(16), batch_size=4, shuffle=True)
    assert [len(yb) for _, yb in train] == [4, 4] and len(train) == 2
    # A last batch of two or more is kept; loaders that do not shuffle (validation, test) keep every image.
    assert [len(yb) for _, yb in image_loader(paths, None, eval_transform(16), batch_size=3, shuffle=True)] == [3] * 3
    assert [len(yb) for _, yb in image_loader(paths, None, eval_transform(16), batch_size=4)] == [4, 4, 1]
    assert [len(yb) for _, yb in image_loader(paths[:7], None, eval_transform(16), batch_size=4, shuffle=True)] == [4, 3]


def tta_setup(tmp_path):
    paths = write_images(tmp_path, 6, size=24)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3), nn.LogSoftmax(dim=1))
    learn = Learner(model, None, None, nn.NLLLoss(), device="cpu")

    def make_loader(augment):
        return image_loader(paths, None, train_transform(16) if augment else eval_transform(16), batch_size=4)

    return learn, make_loader


def test_predict_tta_repeats_and_leaves_the_random_state_alone(tmp_path, monkeypatch):
    learn, make_loader = tta_setup(tmp_path)

    def no_cuda_seeding(*args):
        raise AssertionError("predict_tta reseeded the CUDA generator")

    monkeypatch.setattr(torch.cuda, "manual_seed_all", no_cuda_seeding)
    monkeypatch.setattr(torch.cuda, "manual_seed", no_cuda_seeding)
    torch.default_generator.manual_seed(123)
    before = torch.get_rng_state()
    first = predict_tta(learn, make_loader, n_aug=3, seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    again = predict_tta(learn, make_loader, n_aug=3, seed=5)
    assert torch.equal(first, again)
    assert torch.allclose(first.sum(1), torch.ones(6), atol=1e-5)
    plain = predict_tta(learn, make_loader, n_aug=0)
    assert not torch.allclose(first, plain)  # the augmented passes did change the images
    assert not torch.equal(first, predict_tta(learn, make_loader, n_aug=3, seed=6))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_predict_tta_leaves_the_cuda_random_state_alone(tmp_path):
    learn, make_loader = tta_setup(tmp_path)
    torch.cuda.manual_seed_all(7)
    before = torch.cuda.get_rng_state_all()
    predict_tta(learn, make_loader, n_aug=2, seed=5)
    assert all(torch.equal(a, b) for a, b in zip(before, torch.cuda.get_rng_state_all()))


def test_computing_activations_leaves_the_random_state_alone(tmp_path):
    # Else a run's dropout masks would depend on whether its activations were cached already.
    paths = write_images(tmp_path / "images", 5)
    extractor = FeatureExtractor(VisionModel(2, "resnet18", pretrained=False))
    torch.default_generator.manual_seed(11)
    before = torch.get_rng_state()
    _, cache = precompute_activations(extractor, paths, eval_transform(32), tmp_path / "cache", "resnet18", batch_size=2)
    assert cache.computed == 5 and torch.equal(torch.get_rng_state(), before)
