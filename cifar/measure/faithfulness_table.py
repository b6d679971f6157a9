"""Which CAM method and layer explain a trained model best: the ROAD score (cifar/engine/faithfulness.py) of every
method at every layer, over a fixed set of test images, against three baselines that ignore what the model learned
(random maps at the same layer, the image's Sobel edges, a blob at its centre); and the evidence for each
misclassified image's true and predicted class.

    python -m cifar.measure.faithfulness_table checkpoints/resnet18-cifar10 --data-dir ../shared/cifar10
    python -m cifar.measure.faithfulness_table RUN --methods Score-CAM --layers layer4    # add rows to the table

Writes faithfulness.json into the run folder (so it goes to the Hub with the weights) and the table into the
run's model card. Rows already there for the same images and settings are kept, so costly rows can be added
later, or on a GPU.
"""

import argparse
import os
from pathlib import Path

import numpy as np

from cifar.dataset import load_cifar10
from cifar.engine.explainer import (BASELINES, COSTLY_METHODS, GALLERY_LAYER, GALLERY_METHOD, IMAGE_ONLY, LAYERS,
                                    MISTAKE_SIDES, RANDOM, Explainer)
from cifar.engine.faithfulness import NOISE, PERCENTILES, SEED
from cifar.engine.cam import METHODS
from cifar.runs.card import with_card_section
from cifar.runs.folder import FAITHFULNESS_FILE, load_run
from cifar.files import atomic_write, read_json, save_json

TABLE_IMAGES = 500  # the first 50 test images of each class
CARD_HEADING = "## Faithfulness of the explanations"


def table_indices(labels: np.ndarray) -> np.ndarray:
    """The first TABLE_IMAGES/10 test images of each class, in test-set order: fixed, balanced, no seed."""
    per_class = TABLE_IMAGES // 10
    return np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)]))


def settings(indices) -> dict:
    """What a score depends on besides the model: rows computed under other settings cannot be merged."""
    return {"metric": "ROAD combined (pytorch-grad-cam ROADCombined), softmax probability of the target class",
            "target": "predicted class (plain forward, no TTA)", "percentiles": list(PERCENTILES), "noise": NOISE,
            "seed": SEED, "test_indices": [int(i) for i in indices]}


def rounded(scores: np.ndarray) -> list:
    return scores.astype(float).round(5).tolist()


def compute(run_path: Path, data_dir: str | None, methods, layers, log=print) -> dict:
    """The table of the run at run_path, saved into it after each row: an interrupted run keeps its rows."""
    run = load_run(str(run_path))
    explainer = Explainer(run.model)
    x_test, y_test = load_cifar10(data_dir)["test"]
    indices = table_indices(y_test)
    table = {**settings(indices), "scores": {}}
    if (run_path / FAITHFULNESS_FILE).is_file():
        old = read_json(run_path / FAITHFULNESS_FILE)
        if {k: old.get(k) for k in settings(indices)} == settings(indices):
            table = old
    images = x_test[indices]
    for name in [*BASELINES, *methods]:  # every baseline at every layer, once; the methods asked for, again
        todo = layers if name not in BASELINES else [layer for layer in LAYERS if layer not in table["scores"].get(name, {})]
        if todo:
            log(f"{name}: {', '.join(todo)} on {len(indices)} images")
            computed = todo[:1] if name in IMAGE_ONLY else todo
            _, _, scores = explainer.scored(images, computed, name)
            table["scores"].setdefault(name, {}).update(
                {layer: rounded(scores[:, 0 if name in IMAGE_ONLY else i]) for i, layer in enumerate(todo)})
            save_json(run_path / FAITHFULNESS_FILE, table)
    gallery = {}
    for side in MISTAKE_SIDES:  # the heatmaps the gallery draws
        log(f"misclassified: {GALLERY_METHOD} at {GALLERY_LAYER} for the {side} class of {len(run.misclassified[side])} images")
        gallery[side] = rounded(explainer.gallery_scores(run.misclassified, side)[1])
    table["misclassified"] = {"method": GALLERY_METHOD, "layer": GALLERY_LAYER, **gallery}
    save_json(run_path / FAITHFULNESS_FILE, table)
    return table


def summary(table: dict) -> dict:
    """{method: {layer: (mean, standard error, baselines beaten)}}: a method beats a baseline where the mean paired
    difference with the baseline's scores on the same images exceeds twice its standard error. Baselines beat none."""
    result = {}
    for method, by_layer in table["scores"].items():
        for layer, scores in by_layer.items():
            scores = np.asarray(scores)
            beaten = () if method in BASELINES else tuple(
                baseline for baseline in BASELINES if layer in table["scores"].get(baseline, {})
                and beats(scores, np.asarray(table["scores"][baseline][layer])))
            result.setdefault(method, {})[layer] = (scores.mean(), scores.std(ddof=1) / np.sqrt(len(scores)), beaten)
    return result


def beats(scores: np.ndarray, baseline: np.ndarray) -> bool:
    difference = scores - baseline
    return difference.mean() > 2 * difference.std(ddof=1) / np.sqrt(len(difference))


def markdown(table: dict) -> str:
    """The table a person reads: methods x layers, the best cell in bold, the cells that beat every baseline ticked,
    chance-level cells marked."""
    rows = summary(table)
    # None while only the baselines are in (the command saves rows as they finish: it may have been stopped there).
    best = max(((mean, method, layer) for method, by_layer in rows.items() if method not in BASELINES
                for layer, (mean, _, _) in by_layer.items()), default=None)
    lines = ["| method | " + " | ".join(f"`{layer}`" for layer in LAYERS) + " |", "|---" * (len(LAYERS) + 1) + "|"]
    for method in [*METHODS, *BASELINES]:
        cells = []
        for layer in LAYERS:
            if layer not in rows.get(method, {}):
                cells.append("not computed")
                continue
            mean, error, beaten = rows[method][layer]
            cell = f"{mean:+.3f} ± {error:.3f}"
            cell = f"**{cell}**" if (mean, method, layer) == best else cell
            if method not in BASELINES:
                cell += " ✓" if len(beaten) == len(BASELINES) else "" if RANDOM in beaten else " (chance)"
            cells.append(cell)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    count = len(table["test_indices"])
    return ("\n".join(lines) + f"\n\nROAD score (Rong et al. 2022, as pytorch-grad-cam's `ROADCombined`): the drop of "
            "the predicted class's probability when the pixels a heatmap calls most relevant are removed, minus the "
            "drop when the least relevant are, halved and averaged over removing "
            f"{', '.join(str(100 - p) for p in table['percentiles'])}% of the pixels. Higher is more faithful; "
            f"mean ± standard error over {count} test images ({count // 10} of each class). The baselines ignore what "
            "the model learned: random maps at the layer's resolution, the image's Sobel edges, a Gaussian blob at its "
            "centre (where CIFAR-10 puts the object). \"✓\": better than all three at that layer, \"(chance)\": no "
            "better than random maps (paired difference within two standard errors). \"not computed\": "
            "left out for its cost (Score-CAM is a forward pass per channel: about 45 minutes of a 2-core CPU at "
            "`layer4`; the methods added later are scored on fewer pictures by every metric, in the table of all "
            "metrics); add one with `--methods NAME --layers LAYER`. "
            "Recompute: `python -m cifar.measure.faithfulness_table RUN_FOLDER`.")


def table_command(argv, description: str, compute, markdown, card_heading: str, methods_help: str) -> None:
    """What the two faithfulness tables' commands share: a run folder, the data, the methods (the costly ones left out
    unless asked for) and the layers; the table computed into the run, its section of the card replaced, printed."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="run folder")
    parser.add_argument("--data-dir", default=os.environ.get("CIFAR10_DIR"), help="folder with test.npz")
    # The costly methods (hundreds of passes a map) are left out unless asked for: BENCHMARKS.md has their time.
    parser.add_argument("--methods", nargs="*", choices=list(METHODS),
                        default=[m for m in METHODS if m not in COSTLY_METHODS], help=methods_help)
    parser.add_argument("--layers", nargs="+", choices=LAYERS, default=list(LAYERS))
    args = parser.parse_args(argv)
    table = compute(args.run, args.data_dir, args.methods, args.layers)
    card = args.run / "README.md"
    if card.is_file():
        text = with_card_section(card.read_text(), card_heading, f"{card_heading}\n\n{markdown(table)}\n\n")
        atomic_write(card, lambda tmp: tmp.write_text(text))
    print(markdown(table))


def main(argv=None):
    table_command(argv, __doc__, compute, markdown, CARD_HEADING,
                  f"default: all but {', '.join(COSTLY_METHODS)}; none: only the baselines a table lacks")


if __name__ == "__main__":
    main()
