"""AugMix (cifar/training/augmix.py) against the authors' recipe: their operations at their scales, their mixing, our seeding."""

import numpy as np
import PIL.Image
import pytest
from PIL import ImageOps

from cifar.training.augmix import OPERATIONS, WIDTH, AugMix, augment_and_mix
from cifar.training.config import make_config
from cifar.training.data import train_transform
from tests.conftest import synthetic_cifar

IMAGE = synthetic_cifar(n_train=1)["train"][0][0]  # one uint8 32x32x3 picture


def plan(chains, weights=(1.0, 0.0, 0.0), skip=1.0):
    return {"weights": np.float32(weights), "skip": np.float32(skip), "chains": chains}


def named(name):
    return [i for i, operation in enumerate(OPERATIONS) if operation.__name__ == name][0]


def test_the_nine_operations_are_the_authors_list_without_the_ones_the_benchmark_tests():
    assert [op.__name__ for op in OPERATIONS] == ["autocontrast", "equalize", "posterize", "rotate", "solarize",
                                                  "shear_x", "shear_y", "translate_x", "translate_y"]


@pytest.mark.parametrize("name, level, expected", [
    # level on the authors' 0-10 scale; their int_parameter(level, maxval) = int(level * maxval / 10)
    ("solarize", 5.0, lambda p: ImageOps.solarize(p, 256 - 128)),
    ("posterize", 3.0, lambda p: ImageOps.posterize(p, 4 - 1)),
    ("rotate", 3.4, lambda p: p.rotate(-10, resample=PIL.Image.BILINEAR)),
    ("translate_x", 3.0, lambda p: p.transform((32, 32), PIL.Image.AFFINE, (1, 0, -3, 0, 1, 0),
                                               resample=PIL.Image.BILINEAR)),
    ("shear_y", 2.0, lambda p: p.transform((32, 32), PIL.Image.AFFINE, (1, 0, 0, -0.06, 1, 0),
                                           resample=PIL.Image.BILINEAR)),
])
def test_one_operation_alone_is_pillows_at_the_authors_scale(name, level, expected):
    out = augment_and_mix(IMAGE, plan([[(named(name), level, -1)], [], []]))
    np.testing.assert_array_equal(out, np.asarray(expected(PIL.Image.fromarray(IMAGE))))


def test_the_mix_is_the_dirichlet_weighted_chains_blended_with_the_picture_by_the_skip_weight():
    chains = [[(named("equalize"), 1.0, 1)], [(named("autocontrast"), 1.0, 1)], []]
    weights, skip = (0.2, 0.3, 0.5), 0.4
    out = augment_and_mix(IMAGE, plan(chains, weights, skip))
    picture = PIL.Image.fromarray(IMAGE)
    parts = [np.asarray(ImageOps.equalize(picture)), np.asarray(ImageOps.autocontrast(picture)), IMAGE]
    mix = sum(w * p.astype(np.float32) for w, p in zip(weights, parts))
    expected = np.rint((1 - skip) * IMAGE.astype(np.float32) + skip * mix)
    np.testing.assert_allclose(out, expected, atol=1)  # float32 against float64 sums round a half either way
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(augment_and_mix(IMAGE, plan(chains, weights, skip=0.0)), IMAGE)


def test_the_plan_is_drawn_as_the_authors_draw_it_from_the_seeded_generator():
    augmix = AugMix(severity=3)
    augmix.set_random_seed(7)
    plans = [augmix.get_params()["plan"] for _ in range(200)]
    assert all(len(p["chains"]) == WIDTH and abs(p["weights"].sum() - 1) < 1e-5 and 0 <= p["skip"] <= 1
               for p in plans)
    depths = {len(chain) for p in plans for chain in p["chains"]}
    levels = [level for p in plans for chain in p["chains"] for _, level, _ in chain]
    assert depths == {1, 2, 3} and 0.1 <= min(levels) and max(levels) <= 3
    augmix.set_random_seed(7)
    again = augmix.get_params()["plan"]
    assert again["chains"] == plans[0]["chains"] and again["skip"] == plans[0]["skip"]


def test_the_robust_recipe_augments_with_augmix_seeded_per_batch():
    transform = train_transform(make_config("robust"))
    assert any(isinstance(step, AugMix) for step in transform.transforms)
    assert not any(isinstance(step, AugMix) for step in train_transform(make_config("full")).transforms)
    images = synthetic_cifar(n_train=8)["train"][0]
    runs = []
    for seed in (1, 1, 2):
        transform.set_random_seed(seed)
        runs.append(np.stack([transform(image=image)["image"].numpy() for image in images]))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert (runs[0] != runs[2]).any()
