"""AugMix (Hendrycks, Mu, Cubuk, Zoph, Gilmer, Lakshminarayanan 2020) as an Albumentations transform, for the robust
recipe: a few chains of random operations applied to the picture, their results mixed with Dirichlet weights, and
that mix blended with the picture itself by a Beta-drawn weight. The picture stays recognisable (no operation removes
it) while its local statistics vary, which is what makes a model lean less on the textures that corruptions destroy.

Albumentations has no AugMix, so this is the authors' own recipe (google-research/augmix, augmentations.py and
cifar.py): their nine operations with their parameter scales, on Pillow as there, their defaults (width 3, depth 1-3,
severity 3, alpha 1). Their list leaves out the colour, contrast, brightness and sharpness operations on purpose:
those overlap the CIFAR-10-C test corruptions, and training on them would measure memory, not robustness.

Two differences from their code, neither changing what is drawn: every random number comes from the transform's
seeded generator (so a batch's augmentations are a function of its key, cifar/training/data.py), and the mix is rounded back to
uint8, since the pictures stay uint8 until they reach the device (the authors mix after normalising; normalisation is
affine and the weights sum to one, so only the rounding, at most half a grey level, differs).
"""

import numpy as np
from albumentations.core.transforms_interface import ImageOnlyTransform
from PIL import Image, ImageOps

SIZE = 32
WIDTH = 3  # chains mixed
DEPTH = (1, 3)  # operations per chain, drawn uniformly from this range
ALPHA = 1.0  # of the Dirichlet over the chains and the Beta of the skip connection


def _level(level: float, maximum: float) -> float:
    """The authors' float_parameter: `level` on their 0-10 scale, as a share of the operation's maximum."""
    return level * maximum / 10


def autocontrast(picture, level, sign):
    return ImageOps.autocontrast(picture)


def equalize(picture, level, sign):
    return ImageOps.equalize(picture)


def posterize(picture, level, sign):
    return ImageOps.posterize(picture, 4 - int(_level(level, 4)))


def rotate(picture, level, sign):
    return picture.rotate(sign * int(_level(level, 30)), resample=Image.BILINEAR)


def solarize(picture, level, sign):
    return ImageOps.solarize(picture, 256 - int(_level(level, 256)))


def _affine(picture, coefficients):
    return picture.transform((SIZE, SIZE), Image.AFFINE, coefficients, resample=Image.BILINEAR)


def shear_x(picture, level, sign):
    return _affine(picture, (1, sign * _level(level, 0.3), 0, 0, 1, 0))


def shear_y(picture, level, sign):
    return _affine(picture, (1, 0, 0, sign * _level(level, 0.3), 1, 0))


def translate_x(picture, level, sign):
    return _affine(picture, (1, 0, sign * int(_level(level, SIZE / 3)), 0, 1, 0))


def translate_y(picture, level, sign):
    return _affine(picture, (1, 0, 0, 0, 1, sign * int(_level(level, SIZE / 3))))


OPERATIONS = (autocontrast, equalize, posterize, rotate, solarize, shear_x, shear_y, translate_x, translate_y)


def augment_and_mix(image: np.ndarray, plan: dict) -> np.ndarray:
    """The picture (uint8 HWC) after the chains of `plan` (drawn by AugMix.get_params), mixed as the authors do."""
    picture = Image.fromarray(image)
    mix = np.zeros(image.shape, dtype=np.float32)
    for weight, chain in zip(plan["weights"], plan["chains"]):
        augmented = picture
        for operation, level, sign in chain:
            augmented = OPERATIONS[operation](augmented, level, sign)
        mix += weight * np.asarray(augmented, dtype=np.float32)
    mixed = (1 - plan["skip"]) * image.astype(np.float32) + plan["skip"] * mix
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


class AugMix(ImageOnlyTransform):
    """AugMix at `severity` (the authors' 1-10 scale; 3 by default there and here), drawn from the pipeline's seed."""

    def __init__(self, severity: int = 3, p: float = 1.0):
        super().__init__(p=p)
        self.severity = severity

    def get_params(self) -> dict:
        rng = self.random_generator
        chains = [[(int(rng.integers(len(OPERATIONS))), float(rng.uniform(0.1, self.severity)),
                    1 if rng.uniform() > 0.5 else -1)
                   for _ in range(int(rng.integers(DEPTH[0], DEPTH[1] + 1)))]
                  for _ in range(WIDTH)]
        return {"plan": {"weights": rng.dirichlet([ALPHA] * WIDTH).astype(np.float32),
                         "skip": np.float32(rng.beta(ALPHA, ALPHA)), "chains": chains}}

    def apply(self, img: np.ndarray, plan: dict, **params) -> np.ndarray:
        return augment_and_mix(img, plan)

    def get_transform_init_args_names(self) -> tuple:
        return ("severity",)
