"""Matplotlib figures of a run: training curves and the confusion matrix."""

import matplotlib

matplotlib.use("Agg")  # no display on servers, Spaces or CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def curve_figure(history: dict, metric: str):
    """Train vs test (and validation, when held out) `metric` ('accuracy' or 'loss') per epoch."""
    epochs = [e["epoch"] for e in history["epochs"]]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for split in ("train", "val", "test"):
        key = f"{split}_{metric}"
        if history["epochs"] and key in history["epochs"][0]:
            values = [e[key] * (100 if metric == "accuracy" else 1) for e in history["epochs"]]
            ax.plot(epochs, values, marker="o", label=split)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("accuracy (%)" if metric == "accuracy" else "cross-entropy loss")
    ax.set_title(f"{metric.capitalize()} per epoch")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def confusion_figure(metrics: dict):
    confusion = np.asarray(metrics["confusion_matrix"])
    classes = metrics["classes"]
    fig, ax = plt.subplots(figsize=(6.5, 5.5), dpi=100)
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = confusion.max() / 2
    for (row, col), count in np.ndenumerate(confusion):
        ax.text(col, row, count, ha="center", va="center", fontsize=7,
                color="white" if count > threshold else "black")
    ax.set_title("Confusion matrix (test set)")
    fig.tight_layout()
    return fig


def save_figure(fig, path) -> None:
    fig.savefig(path)
    plt.close(fig)
