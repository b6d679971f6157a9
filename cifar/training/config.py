"""Every training hyperparameter in one place, and the named recipes built from them.

The numbers are the ones the recipe was run with; `history.json` of each shipped run records the
config it used, so a run folder is always self-describing.
"""

import json
from dataclasses import asdict, dataclass, fields, replace

from cifar.engine.model import CIFAR10_MEAN, CIFAR10_STD


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 4
    batch_size: int = 256
    # Images per forward/backward; gradients add up over the batch before each step, so only BatchNorm
    # (which normalizes each micro-batch) sees the difference. 0: 64 on a CPU, where 4 x 64 runs at
    # 58 img/s against 44 for 256 at once (cache-bound), and the whole batch on a GPU.
    micro_batch: int = 0
    # One-cycle: linear warm-up from lr/div to lr over the first `warmup` of the run, then linear
    # decay to zero. Peak 0.2 at batch 256 is the usual 0.1-per-128 scaling for Nesterov SGD.
    lr: float = 0.2
    warmup: float = 0.25
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    # Weight decay on BatchNorm scales and biases only shrinks them for no regularizing gain.
    decay_norm_and_bias: bool = False
    label_smoothing: float = 0.1
    # Augmentation (Albumentations): reflect-pad + random crop, flip, one cutout hole.
    pad: int = 4
    cutout: int = 8  # side of the square hole in pixels; 0 turns it off
    rotate: float = 0.0  # max degrees; only the seed recipe uses it
    augmix: int = 0  # AugMix severity (cifar/training/augmix.py; the authors' 3) after crop and flip; 0 turns it off
    mean: tuple = CIFAR10_MEAN
    std: tuple = CIFAR10_STD
    # Evaluation: average the logits of the image and its mirror (the app does the same).
    tta: str = "flip"  # "none" | "flip" | "flip_translate"
    val_size: int = 0  # images held out of the training set for choosing hyperparameters
    # The first this-many validation images, under every CIFAR-10-C corruption made here at its five severities,
    # measured after each epoch: the robustness curve a robust recipe is chosen on (never the test set's).
    val_corruptions: int = 0
    init: str = ""  # run folder whose weights the training starts from (fine-tuning); "": from scratch
    seed: int = 0
    workers: int = -1  # DataLoader workers; -1 picks by device
    compile: bool = False  # torch.compile the model (GPU)

    def to_dict(self) -> dict:
        """Plain JSON types (tuples become lists), as stored in history.json."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in known}
        return cls(**values)


RECIPES = {
    # Short recipe, 4 epochs, for issue #4 (>= 87% test accuracy in <= 4 epochs; the original needed 12).
    # Chosen on the 5,000-image validation split with 4-epoch runs on the other 45,000: batch 128 at lr
    # 0.1 (twice the optimizer steps of the base batch 256, the same lr per image) and no cutout (4 epochs
    # underfit; the hole only adds to it): 85.74% val (batch 64 at lr 0.05: 85.80%, a tie at twice the
    # steps); averaging 6 views (flip_translate) 87.10%. The base settings over 4 epochs gave 84.6% test.
    # Trained on all 50,000 (docs/fast-recipe/): 86.81% test, 87.40% with 6-view TTA, 61 min on 2 cores.
    "fast": TrainConfig(batch_size=128, lr=0.1, cutout=0, tta="flip_translate"),
    # The shipped model (issue #3): the base settings run 30 epochs. Published ResNet-18
    # one-cycle runs reach ~93.4% at 26 epochs and ~94% at 35, so 30 was fixed in advance. Measured:
    # 94.24% test accuracy, 94.90% with flip_translate TTA (6 views), 8.4 h on a 2-core CPU.
    "full": TrainConfig(epochs=30, tta="flip_translate"),
    # The robust model (issue #24): the shipped "full" model fine-tuned 10 epochs with AugMix at the authors' settings
    # (cifar/training/augmix.py; no cutout, as theirs), on 45,000 images so that 5,000 stay out to measure it: clean and, on 250
    # of them, under the CIFAR-10-C corruptions after every epoch. Peak lr 0.05, a quarter of the full recipe's, so the
    # fine-tune moves the model rather than restarting it; 10 epochs is what 2 CPU cores do in about 95 minutes.
    # Fixed in advance, not swept: see docs/robust-recipe.md for what was measured.
    "robust": TrainConfig(epochs=10, lr=0.05, cutout=0, augmix=3, val_size=5000, val_corruptions=250,
                          init="checkpoints/resnet18-cifar10", tta="flip_translate"),
    # The original course project, reproduced on this code: batch 64, lr 0.01, plain SGD, constant lr,
    # rotation + cutout + flip, mean/std 0.5, 25 epochs.
    "seed": TrainConfig(epochs=25, batch_size=64, lr=0.01, warmup=0.0, momentum=0.0, nesterov=False,
                        weight_decay=0.0, decay_norm_and_bias=True, label_smoothing=0.0, pad=0,
                        cutout=16, rotate=15.0, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), tta="none"),
}


def make_config(recipe: str = "fast", **overrides) -> TrainConfig:
    return replace(RECIPES[recipe], **{k: v for k, v in overrides.items() if v is not None})
