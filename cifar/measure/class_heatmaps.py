"""Each class's mean heatmap over its test images, added to a run folder: where the model looks for a cat.

    python -m cifar.measure.class_heatmaps checkpoints/resnet18-cifar10 --data-dir ../shared/cifar10

writes metrics.json "class_heatmaps", class_heatmaps.png and its section of the model card.
"""

import warnings

import numpy as np

from cifar.engine.explainer import DEFAULT_LAYER, DEFAULT_METHOD, Explainer
from cifar.engine.test_set import centre_share, class_means
from cifar.measure import on_the_test_set
from cifar.runs.folder import CLASS_HEATMAPS_FIGURE


CARD_HEADING = "## Where the model looks, class by class"


# -- Each class's mean heatmap: the command -------------------------------------------------------------------
def class_heatmaps(explainer: Explainer, images: np.ndarray, labels: np.ndarray, classes: list,
                   method: str = DEFAULT_METHOD, layer: str = DEFAULT_LAYER) -> tuple[dict, np.ndarray]:
    """(metrics.json's "class_heatmaps", (classes, 32, 32) mean maps): every test image's map for its true class."""
    maps = explainer.heatmaps(images, (layer,), method, labels)[0][:, 0]
    means = class_means(maps, labels, len(classes))
    per_image = centre_share(maps)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a class none of whose maps has mass: its mean is NaN
        per_class = [np.nanmean(per_image[labels == c]) for c in range(len(classes))]
    value = {"method": method, "layer": layer, "target": "the true class", "images": int(len(images)),
             "centre": "the central 16x16 pixels, a quarter of the image (an even spread puts 25% there)",
             "centre_share_of_mean_map": {name: share_or_none(s) for name, s in zip(classes, centre_share(means))},
             "centre_share_per_image": {name: share_or_none(s) for name, s in zip(classes, per_class)}}
    return value, means


def share_or_none(share) -> float | None:
    """A share for metrics.json: None where there was no heatmap mass to share (JSON has no NaN)."""
    return None if np.isnan(share) else round(float(share), 4)


def percent(share: float | None) -> str:
    return "no heatmap" if share is None else f"{100 * share:.0f}%"


def card_section(value: dict) -> str:
    rows = "\n".join(f"| {name} | {percent(share)} | {percent(value['centre_share_per_image'][name])} |"
                     for name, share in value["centre_share_of_mean_map"].items())
    return (f"{CARD_HEADING}\n\nThe mean {value['method']} heatmap at `{value['layer']}` of each class's test images, "
            f"each for its true class ({value['images']} images), and the share of the heatmap's mass in "
            f"{value['centre']}.\n\n| class | centre share of the mean map | mean over images |\n|---|---|---|\n"
            f"{rows}\n\n![class heatmaps]({CLASS_HEATMAPS_FIGURE})\n\n")


def main(argv=None):
    from cifar.runs.plots import class_heatmaps_figure
    from cifar.runs.folder import add_measurement

    _, _, run, images, labels = on_the_test_set(__doc__, argv)
    value, means = class_heatmaps(Explainer(run.model), images, labels, run.classes)
    add_measurement(run.path, "class_heatmaps", value, class_heatmaps_figure(means, value), CLASS_HEATMAPS_FIGURE,
                    CARD_HEADING, card_section(value))
    print(card_section(value))


if __name__ == "__main__":
    main()
