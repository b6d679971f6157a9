"""Matplotlib figures of a run: training curves, the confusion matrix, the reliability diagrams and the
randomization sanity check."""

import matplotlib

matplotlib.use("Agg")  # no display on servers, Spaces or CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def curve_figure(history: dict, metric: str):
    """Train vs test (and validation, when held out, and under corruptions, when measured) `metric` ('accuracy' or
    'loss') per epoch."""
    epochs = [e["epoch"] for e in history["epochs"]]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for split in ("train", "val", "val_corrupted", "test"):
        key = f"{split}_{metric}"
        if history["epochs"] and key in history["epochs"][0]:
            values = [e[key] * (100 if metric == "accuracy" else 1) for e in history["epochs"]]
            ax.plot(epochs, values, marker="o", label=split.replace("_", ", "))
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


def reliability_figure(calibration: dict):
    """Guo et al.'s reliability diagrams, before and after temperature scaling: each confidence bin's accuracy
    against the diagonal a perfectly calibrated model follows, the gap to it shaded (metrics.json "calibration")."""
    bins = calibration["bins"]
    edges = np.linspace(0, 1, bins + 1)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), dpi=100, sharey=True)
    for ax, (name, numbers) in zip(axes, (("raw (T = 1)", calibration["before"]),
                                          (f"calibrated (T = {calibration['temperature']:.3f})", calibration["after"]))):
        table = numbers["reliability"]
        filled = np.asarray(table["count"]) > 0
        accuracy, confidence = np.asarray(table["accuracy"]), np.asarray(table["confidence"])
        ax.bar(edges[:-1][filled], accuracy[filled], width=1 / bins, align="edge", color="tab:blue",
               edgecolor="black", label="accuracy")
        ax.bar(edges[:-1][filled], (confidence - accuracy)[filled], bottom=accuracy[filled], width=1 / bins,
               align="edge", color="tab:red", alpha=0.3, edgecolor="tab:red", label="gap to confidence")
        ax.plot([0, 1], [0, 1], "k--", linewidth=1)
        ax.set_xlim(0, 1), ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_title(f"{name}\nECE {100 * numbers['ece']:.2f}%, NLL {numbers['nll']:.3f}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left")
    fig.suptitle(f"Reliability diagrams, on {calibration['reported_on']}", fontsize=10)
    fig.tight_layout()
    return fig


def randomization_figure(randomization: dict):
    """Adebayo et al.'s plot: each method's similarity to the trained model's maps as the weights are re-initialised
    from the logits down (metrics.json "randomization"); one panel per measure and layer. Baselines dashed."""
    steps = ["trained", *randomization["cascade"]]
    layers, measures = randomization["layers"], ("spearman", "ssim")
    fig, axes = plt.subplots(len(measures), len(layers), figsize=(5 * len(layers), 7), dpi=100, sharex=True, sharey=True,
                             squeeze=False)
    for row, measure in enumerate(measures):
        for column, layer in enumerate(layers):
            ax = axes[row][column]
            for method, by_layer in randomization["methods"].items():
                means = [1.0] + [mean for mean, _ in by_layer[layer][measure]]
                ax.plot(range(len(steps)), means, marker="o", markersize=3, label=method,
                        linestyle="--" if method in randomization.get("baselines", ()) else "-")
            ax.axhline(0, color="black", linewidth=0.5)
            ax.set_xticks(range(len(steps)), steps, rotation=45, ha="right")
            ax.set_title(f"{layer}: {'rank correlation' if measure == 'spearman' else 'SSIM'}", fontsize=10)
            ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("randomized down to")
    axes[0][0].set_ylabel("similarity to the trained model's maps")
    axes[0][-1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def class_heatmaps_figure(means: np.ndarray, value: dict):
    """Each class's mean heatmap (metrics.json "class_heatmaps"), titled with the share of its mass in the centre,
    whose square is outlined."""
    fig, axes = plt.subplots(2, (len(means) + 1) // 2, figsize=(2 * ((len(means) + 1) // 2), 4.6), dpi=100,
                             squeeze=False)
    for ax, (name, share), mean in zip(axes.flat, value["centre_share_of_mean_map"].items(), means):
        ax.imshow(mean, cmap="jet", vmin=0, vmax=max(float(mean.max()), 1e-6))
        ax.add_patch(plt.Rectangle((7.5, 7.5), 16, 16, fill=False, edgecolor="white", linewidth=1))
        ax.set_title(f"{name}: {'no heatmap' if share is None else f'{100 * share:.0f}%'}", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"Mean {value['method']} at {value['layer']}, for the true class; % of the mass in the centre square",
                 fontsize=9)
    fig.tight_layout()
    return fig


def corruption_figure(value: dict):
    """Accuracy against severity (0: clean) for each corruption of metrics.json "corruptions"; those outside the
    benchmark's fifteen dashed."""
    fig, ax = plt.subplots(figsize=(9, 5), dpi=100)
    colours = plt.get_cmap("tab20").colors  # 16 lines: the default cycle's 10 colours would repeat
    for colour, (name, accuracies) in zip(colours, value["accuracy"].items()):
        ax.plot(range(6), [100 * value["clean"], *(100 * a for a in accuracies)], marker="o", markersize=3,
                color=colour, label=name.replace("_", " "),
                linestyle="-" if name in value["benchmark_made"] else "--")
    ax.set_xlabel("severity (0: the clean pictures)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"CIFAR-10-C corruptions, {value['images']} test images: mean {100 * value['mean']:.1f}% "
                 f"(clean {100 * value['clean']:.1f}%)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    fig.tight_layout()
    return fig


def save_figure(fig, path) -> None:
    fig.savefig(path)
    plt.close(fig)
