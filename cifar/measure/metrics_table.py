"""Faithfulness by every metric (cifar/engine/metrics.py and ROAD), so that no method is called faithful on one metric
with a known bias: every method at every layer on a fixed set of test pictures, beside controls that a metric should
not prefer (the three baselines that ignore the model, and a blurred copy of each method's own maps), and how far the
metrics agree on the ranking of the methods (Spearman's rank correlation of their means, per layer).

    python -m cifar.measure.metrics_table checkpoints/resnet18-cifar10 --data-dir ../shared/cifar10
    python -m cifar.measure.metrics_table RUN --methods Score-CAM --layers layer4    # add rows

Adds the table to the run's faithfulness.json (key "metrics") and to its model card. Rows already there for the same
pictures and settings are kept; each row is saved as it finishes, so an interrupted run keeps its rows.
"""

from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from cifar.dataset import load_cifar10
from cifar.engine.cam import METHODS
from cifar.engine.cam.baselines import BLUR_SIGMA
from cifar.engine.explainer import BASELINES, BLURRED, COSTLY_METHODS, IMAGE_ONLY, LAYERS, METRICS, Explainer
from cifar.engine.faithfulness import NOISE, PERCENTILES, SEED
from cifar.files import read_json, save_json
from cifar.measure.faithfulness_table import rounded, table_command, table_indices
from cifar.runs.folder import FAITHFULNESS_FILE, load_run

IMAGES_PER_CLASS = 3  # 30 pictures: every metric of ~150 rows (31 maps x 5 layers), ~40 min of a 2-core CPU
STEPS = 10  # deletion and insertion's steps here (torch-cam's default 20 would double their 19 forward passes a map)
CARD_HEADING = "## Faithfulness by every metric"


def metric_indices(labels: np.ndarray) -> np.ndarray:
    """The first IMAGES_PER_CLASS of each class among the ROAD table's pictures (its first of each class): fixed."""
    indices = table_indices(labels)
    return np.sort(np.concatenate([indices[labels[indices] == c][:IMAGES_PER_CLASS] for c in range(10)]))


def settings(indices) -> dict:
    return {"target": "predicted class (plain forward, no TTA)", "probability": "softmax of the class",
            "road": {"percentiles": list(PERCENTILES), "noise": NOISE, "seed": SEED}, "deletion_insertion_steps": STEPS,
            "deletion_insertion_baseline": "black", "blur_sigma_pixels": BLUR_SIGMA,
            "test_indices": [int(i) for i in indices]}


def rows_for(methods) -> list:
    """The table's rows: each method and its blurred copy, then the baselines."""
    return [*(name for method in methods for name in (method, method + BLURRED)), *BASELINES]


def compute(run_path: Path, data_dir: str | None, methods, layers, log=print) -> dict:
    run = load_run(str(run_path))
    explainer = Explainer(run.model)
    x_test, y_test = load_cifar10(data_dir)["test"]
    indices = metric_indices(y_test)
    whole = read_json(run_path / FAITHFULNESS_FILE) if (run_path / FAITHFULNESS_FILE).is_file() else {}
    table = whole.get("metrics", {})
    if {k: table.get(k) for k in settings(indices)} != settings(indices):
        table = {**settings(indices), "scores": {}}
    images = x_test[indices]
    for name in rows_for(methods):
        todo = [layer for layer in (LAYERS if name in BASELINES else layers)
                if name not in BASELINES or layer not in table["scores"].get(name, {})]
        todo = todo[:1] if name in IMAGE_ONLY else todo
        if not todo:
            continue
        log(f"{name}: {', '.join(todo)} on {len(indices)} images")
        maps, classes = explainer.heatmaps(images, todo, name)
        found = explainer.metrics(images, maps, classes, name, todo, steps=STEPS)
        for i, layer in enumerate(LAYERS if name in IMAGE_ONLY else todo):
            column = 0 if name in IMAGE_ONLY else i
            table["scores"].setdefault(name, {})[layer] = {metric: rounded(found[metric][:, column]) for metric in METRICS}
        whole["metrics"] = table
        save_json(run_path / FAITHFULNESS_FILE, whole)
    return table


def means(table: dict) -> dict:
    """{row: {layer: {metric: mean over the pictures}}}."""
    return {row: {layer: {metric: float(np.mean(values)) for metric, values in by_metric.items()}
                  for layer, by_metric in by_layer.items()} for row, by_layer in table["scores"].items()}


def agreement(table: dict) -> dict:
    """{(metric a, metric b): mean over the layers of Spearman's correlation between the two metrics' rankings of the
    rows computed at that layer (each metric's sign turned so that higher is better)}; a pair neither ranks at any
    layer is left out."""
    averaged, names = means(table), list(METRICS)
    result = {}
    for a in names:
        for b in names[names.index(a) + 1:]:
            correlations = []
            for layer in LAYERS:
                rows = [row for row in averaged if layer in averaged[row]]
                values = [[averaged[row][layer][m] * (1 if METRICS[m][1] else -1) for row in rows] for m in (a, b)]
                if len(rows) >= 3 and all(len(set(v)) > 1 for v in values):  # a constant metric ranks nothing
                    correlations.append(spearmanr(*values).statistic)
            if correlations:
                result[(a, b)] = float(np.mean(correlations))
    return result


def best_by_metric(table: dict, layer: str) -> dict:
    """{metric: (the best method at `layer` by it, its mean)}, among the methods (not controls)."""
    averaged, best = means(table), {}
    for metric, (_, higher) in METRICS.items():
        scored = [(averaged[row][layer][metric], row) for row in averaged if row in METHODS and layer in averaged[row]]
        if scored:
            value, row = (max if higher else min)(scored)
            best[metric] = (row, value)
    return best


def controls_beaten(table: dict, metric: str) -> tuple[int, int]:
    """(how many method x layer cells beat their own blurred copy by `metric`, how many were compared)."""
    averaged, higher = means(table), METRICS[metric][1]
    pairs = [(averaged[row][layer][metric], averaged[row + BLURRED][layer][metric])
             for row in averaged if row in METHODS and row + BLURRED in averaged
             for layer in averaged[row] if layer in averaged[row + BLURRED]]
    return sum((own > control) == higher for own, control in pairs), len(pairs)


def consensus(table: dict, layers=LAYERS) -> list:
    """[(mean rank, method, layer)], best first: each method x layer cell among `layers` ranked among them by each
    metric (1 the best), the ranks averaged over the metrics."""
    averaged = means(table)
    cells = [(row, layer) for row in averaged if row in METHODS for layer in averaged[row] if layer in layers]
    ranks = {cell: [] for cell in cells}
    for metric, (_, higher) in METRICS.items():
        order = sorted(cells, key=lambda cell: -averaged[cell[0]][cell[1]][metric] if higher
                       else averaged[cell[0]][cell[1]][metric])
        for rank, cell in enumerate(order, 1):
            ranks[cell].append(rank)
    return sorted((float(np.mean(found)), *cell) for cell, found in ranks.items())


def beaten_by(table: dict, method: str, layer: str, control: str) -> int:
    """On how many metrics the method's cell is better than the control's at the same layer."""
    averaged = means(table)
    ours, theirs = averaged[method][layer], averaged.get(control, {}).get(layer)
    return sum((ours[m] > theirs[m]) == higher for m, (_, higher) in METRICS.items()) if theirs else 0


def baselines_above_every_method(table: dict) -> dict:
    """{metric: (layers, baselines)}: the layers where a baseline scores better than every method by the metric, and
    which baselines do."""
    averaged, found = means(table), {}
    for metric, (_, higher) in METRICS.items():
        for layer in LAYERS:
            methods = [averaged[row][layer][metric] for row in averaged if row in METHODS and layer in averaged[row]]
            if not methods:
                continue
            best = max(methods) if higher else min(methods)
            winners = [row for row in BASELINES if layer in averaged.get(row, {})
                       and (averaged[row][layer][metric] > best if higher else averaged[row][layer][metric] < best)]
            if winners:
                layers, names = found.setdefault(metric, ([], []))
                layers.append(layer)
                names.extend(winners)
    return found


def which_to_trust(table: dict) -> str:
    """What the numbers say to use, in sentences: the consensus of the six metrics overall, at the last stage and at the
    finest stages, each checked against its blurred copy and the centre blob; and the metrics that reward blur."""
    from cifar.engine.explainer import CENTRE

    ranked = consensus(table)
    if not ranked:
        return ""
    def described(cell, count) -> str:
        rank, method, layer = cell
        return (f"**{method} at `{layer}`** (mean rank {rank:.1f} of {count} by the {len(METRICS)} metrics; better than "
                f"its own blurred map on {beaten_by(table, method, layer, method + BLURRED)} of {len(METRICS)}, than the "
                f"centre blob on {beaten_by(table, method, layer, CENTRE)})")

    lines = ["**Which method to trust for what, on this model** (from the table below, not from the literature):", ""]
    lines.append("- Most faithful overall: " + described(ranked[0], len(ranked)) + ", then " + ", ".join(
        f"{method} at `{layer}`" for _, method, layer in ranked[1:3]) + ".")
    for what, layers in (("The class's evidence at the last stage (the page's default layer)", ("layer4",)),
                         ("Finer detail (the early stages, 32x32 and 16x16)", ("layer1", "layer2"))):
        best = consensus(table, layers)
        if best:
            lines.append(f"- {what}: " + described(best[0], len(best)) + ".")
    above = baselines_above_every_method(table)
    if above:
        lines.append("- A map that ignores the model beats every method by " + "; ".join(
            f"{metric} at {', '.join(f'`{layer}`' for layer in layers)} ({', '.join(sorted(set(names))).lower()})"
            for metric, (layers, names) in above.items()) + ": there the metric cannot tell a method from where "
            "CIFAR-10 puts the object (or from scattered pixels).")
    blur = [(metric, *controls_beaten(table, metric)) for metric in METRICS]
    preferring = [f"{metric} ({compared - beaten} of {compared} cells)" for metric, beaten, compared in blur
                  if compared and compared - beaten > compared / 2]
    if preferring:
        lines.append("- Metrics that score most methods' **blurred** copies above the methods themselves: "
                     + ", ".join(preferring) + ": a method chosen by one of these alone may be chosen for its blur.")
    pairs = agreement(table)
    if pairs:
        (a, b), low = min(pairs.items(), key=lambda item: item[1])
        lines.append(f"- The metrics agree least between {a} and {b} (rank correlation {low:+.2f}): no one metric "
                     "decides.")
    return "\n".join(lines) + "\n\n"


def markdown(table: dict) -> str:
    averaged = means(table)
    lines = [which_to_trust(table)]
    for layer in LAYERS:
        rows = [row for row in averaged if layer in averaged[row]]
        if not rows:
            continue
        lines += [f"**`{layer}`**", "", "| map | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
        best = {metric: row for metric, (row, _) in best_by_metric(table, layer).items()}
        for row in rows:
            cells = [f"**{averaged[row][layer][m]:.3f}**" if best.get(m) == row else f"{averaged[row][layer][m]:.3f}"
                     for m in METRICS]
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        lines.append("")
    pairs = agreement(table)
    lines += ["How far the metrics agree on the ranking of the maps (Spearman, mean over the layers; 1: the same order, "
              "0: unrelated, -1: reversed):", "", "| | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    for a in METRICS:
        found = [pairs.get((a, b), pairs.get((b, a))) for b in METRICS]
        cells = ["1" if a == b else "—" if value is None else f"{value:+.2f}" for b, value in zip(METRICS, found)]
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    blur = ", ".join(f"{metric} {beaten}/{compared}" for metric in METRICS
                     for beaten, compared in [controls_beaten(table, metric)] if compared)
    count = len(table["test_indices"])
    lines += ["", f"Means over {count} test pictures ({count // 10} of each class), each map for the predicted class; "
              "the best method at each layer by each metric in bold. What each metric rewards: "
              + " ".join(f"**{m}**: {why}." for m, (why, _) in METRICS.items())
              + f" Controls: \"(blurred)\" is the method's own map blurred (Gaussian, {table['blur_sigma_pixels']} px), "
              f"the baselines ignore the model. Methods that beat their own blurred copy, cells of method x layer: {blur}. "
              "Recompute: `python -m cifar.measure.metrics_table RUN_FOLDER`."]
    return "\n".join(lines)


def main(argv=None):
    table_command(argv, __doc__, compute, markdown, CARD_HEADING, f"default: all but {', '.join(COSTLY_METHODS)}")


if __name__ == "__main__":
    main()
