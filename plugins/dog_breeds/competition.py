"""Dog breed identification: the image-classification kind on Kaggle's files (fast.ai 2018, lessons 1-4).

Kaggle's layout: labels.csv (id,breed), train/<id>.jpg, test/<id>.jpg and sample_submission.csv (id plus
one probability column per breed, in sorted order), as competitions/dog-breeds.toml declares it. The
recipe (precomputed activations, unfreezing with differential rates, TTA) is the kind's,
harness.kinds.image; this plugin adds the name, the words and the generated sample.
"""
from __future__ import annotations

from pathlib import Path

from harness_competitions import config_path
from harness.host.hookspecs import hookimpl
from harness.kinds.image import ImageClassification, require_vision


class DogBreeds(ImageClassification):
    name = "dog-breeds"
    kaggle_slug = "dog-breed-identification"
    description = "Dog breeds from photos: pretrained CNN, dropout head, precomputed activations (log loss)"
    config_path = config_path("dog-breeds")
    class_noun = "breed"

    def write_sample(self, data_dir, seed=0, n_breeds=4, n_per_breed=40, n_test=40, size=64):
        require_vision(self.name)
        from harness_plugins.dog_breeds.sample import write_sample

        write_sample(Path(data_dir), seed, n_breeds, n_per_breed, n_test, size)


@hookimpl
def register_competitions(register):
    register(DogBreeds())
