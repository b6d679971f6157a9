"""Sanity checks for the explanations (Adebayo et al. 2018, "Sanity Checks for Saliency Maps"): cascading model-
parameter randomization. The trained model's weights are re-initialised from the logits down, one stage at a time
(fc, layer4, layer3, layer2, layer1, the stem), and after each step every method's heatmaps are compared with the
trained model's, by Spearman rank correlation and SSIM. A method whose maps survive randomization shows the image
(its edges, its centre), not what the model learned.

    python -m cifar.measure.sanity checkpoints/resnet18-cifar10 --data-dir ../shared/cifar10

adds the table to the run's metrics.json (key "randomization"), randomization.png and its model card.
"""

import argparse
import os

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from cifar.dataset import load_cifar10
from cifar.engine.predict import predict_arrays
from cifar.engine.explainer import CENTRE, COSTLY_METHODS, DEFAULT_LAYER, SOBEL, Explainer
from cifar.engine.cam import METHODS
from cifar.runs.plots import randomization_figure
from cifar.runs.folder import RANDOMIZATION_FIGURE, add_measurement, load_run

CASCADE = ("fc", "layer4", "layer3", "layer2", "layer1", "stem")  # re-initialised in this order, cumulatively
STEM = ("conv1", "bn1")
LAYERS = (DEFAULT_LAYER, "layer2")  # the page's default layer, and one earlier
IMAGES_PER_CLASS = 10  # 100 test images: the first 10 of each class
SEED = 0  # of the re-initialised weights
SSIM_WINDOW = 7  # scikit-image's default: a uniform 7x7 window, sample covariance, K1 = 0.01, K2 = 0.03
CARD_HEADING = "## Sanity checks: model randomization"
# Every method but Score-CAM (100 images x 6 steps x ~550 forward passes, about an hour of a 2-core CPU: add it with
# --methods Score-CAM), and the two baselines that ignore the model. Random maps would be a third, trivially: the
# same seeded maps at every step.
BASELINES = (SOBEL, CENTRE)
DEFAULT_METHODS = [*(m for m in METHODS if m not in COSTLY_METHODS), *BASELINES]


def randomized(model, stages, seed: int = SEED):
    """A clone of `model` with the modules of `stages` (names from CASCADE) re-initialised as at construction, each
    stage from its own seed, so a stage gets the same weights whichever stages are randomized with it."""
    copy = model.clone()
    for stage in stages:
        torch.manual_seed(seed + CASCADE.index(stage))
        modules = [getattr(copy, name) for name in STEM] if stage == "stem" else [getattr(copy, stage)]
        for module in (m for top in modules for m in top.modules()):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()  # BatchNorm: also its running statistics (mean 0, variance 1)
    return copy


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of two maps; 0 where either is constant (a map gone blank kept none of the other's order)."""
    if a.min() == a.max() or b.min() == b.max():
        return 0.0
    return float(spearmanr(a.ravel(), b.ravel()).statistic)


def ssim(a: np.ndarray, b: np.ndarray, window: int = SSIM_WINDOW) -> np.ndarray:
    """Mean structural similarity (Wang et al. 2004) of maps (N, H, W) in [0, 1], as scikit-image's
    structural_similarity(data_range=1) computes it: local statistics in a uniform window, over the positions where
    the window fits."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    local = F.avg_pool2d(torch.stack([a, b, a * a, b * b, a * b], 1), window, stride=1)
    mean_a, mean_b, aa, bb, ab = local.unbind(1)
    sample = window * window / (window * window - 1)  # sample, not population, covariance
    var_a, var_b, cov = sample * (aa - mean_a ** 2), sample * (bb - mean_b ** 2), sample * (ab - mean_a * mean_b)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    index = ((2 * mean_a * mean_b + c1) * (2 * cov + c2)) / ((mean_a ** 2 + mean_b ** 2 + c1) * (var_a + var_b + c2))
    return index.mean((1, 2)).numpy()


def similarities(trained: np.ndarray, changed: np.ndarray) -> dict:
    """Per image (N,): Spearman and SSIM of the maps (N, H, W) before and after."""
    return {"spearman": np.array([spearman(a, b) for a, b in zip(trained, changed)]), "ssim": ssim(trained, changed)}


def image_indices(labels: np.ndarray) -> np.ndarray:
    return np.sort(np.concatenate([np.flatnonzero(labels == c)[:IMAGES_PER_CLASS] for c in range(10)]))


def cascade(model, images: np.ndarray, methods, layers=LAYERS, log=print) -> dict:
    """{method: {layer: {"spearman" | "ssim": [(mean, standard error) per CASCADE step]}}} for uint8 images, each
    map explaining the trained model's predicted class (the same class at every step)."""
    trained = Explainer(model)
    targets = predict_arrays(model, images)[0].argmax(1)
    before = {method: trained.heatmaps(images, layers, method, targets)[0] for method in methods}
    table = {method: {layer: {"spearman": [], "ssim": []} for layer in layers} for method in methods}
    for step, stage in enumerate(CASCADE):
        log(f"randomized down to {stage}")
        explainer = Explainer(randomized(model, CASCADE[:step + 1]))
        for method in methods:
            after = explainer.heatmaps(images, layers, method, targets)[0]
            for i, layer in enumerate(layers):
                for name, values in similarities(before[method][:, i], after[:, i]).items():
                    error = values.std(ddof=1) / np.sqrt(len(values))
                    table[method][layer][name].append([round(float(values.mean()), 5), round(float(error), 5)])
    return table


def card_section(randomization: dict) -> str:
    """The card's (and the app's) table: each method's rank correlation with the trained model's maps after
    randomizing the logits (fc) and after the whole model, at each layer."""
    layers = randomization["layers"]
    lines = ["| method | " + " | ".join(f"`{layer}`: after fc · after all" for layer in layers) + " |",
             "|---" * (len(layers) + 1) + "|"]
    for method in [*METHODS, *randomization["baselines"]]:
        by_layer = randomization["methods"].get(method)
        cells = [f"{by_layer[layer]['spearman'][0][0]:+.2f} · {by_layer[layer]['spearman'][-1][0]:+.2f}" if by_layer
                 else "not computed" for layer in layers]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    count = len(randomization["test_indices"])
    return (f"{CARD_HEADING}\n\nCascading randomization (Adebayo et al. 2018): the weights are re-initialised from the "
            f"logits down ({', '.join(CASCADE)}), and each method's heatmaps compared with the trained model's, for "
            f"the same {count} test images and class. Spearman rank correlation after randomizing the last layer "
            "alone, and after the whole model: a method that explains the model falls towards 0; one that stays "
            "near 1 shows the image, whatever the weights (the Sobel edge map and the centre blob, which ignore the "
            "model, are there to show what that looks like). SSIM, and every step, in `metrics.json` and the plot. \"not "
            "computed\": left out for its cost; add it with `python -m cifar.measure.sanity RUN --methods Score-CAM`.\n\n"
            + "\n".join(lines) + "\n\n![randomization](randomization.png)\n\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run folder")
    parser.add_argument("--data-dir", default=os.environ.get("CIFAR10_DIR"), help="folder with test.npz")
    parser.add_argument("--methods", nargs="+", choices=[*METHODS, *BASELINES], default=DEFAULT_METHODS,
                        help=f"default: {', '.join(DEFAULT_METHODS)}")
    args = parser.parse_args(argv)
    run = load_run(args.run)
    x_test, y_test = load_cifar10(args.data_dir)["test"]
    indices = image_indices(y_test)
    old = run.metrics.get("randomization", {})
    randomization = {"cascade": list(CASCADE), "layers": list(LAYERS), "seed": SEED, "ssim_window": SSIM_WINDOW,
                     "baselines": list(BASELINES), "target": "the trained model's predicted class",
                     "test_indices": indices.tolist(), "methods": {}}
    if {k: v for k, v in old.items() if k != "methods"} == {k: v for k, v in randomization.items() if k != "methods"}:
        randomization["methods"] = old["methods"]  # rows from an earlier run under the same protocol are kept
    randomization["methods"].update(cascade(run.model, x_test[indices], args.methods))
    add_measurement(run.path, "randomization", randomization, randomization_figure(randomization), RANDOMIZATION_FIGURE,
                    CARD_HEADING, card_section(randomization))
    print(card_section(randomization))


if __name__ == "__main__":
    main()
