"""How a run's model does on corrupted pictures: the CIFAR-10-C corruptions (cifar/engine/corruptions.py) at their five
severities, on a fixed subset of the test set (its first 100 images of each class), plain forward pass. The table
goes into the run folder (metrics.json "corruptions", corruptions.png), its model card and the app.

    python -m cifar.measure.corruption_benchmark checkpoints/resnet18-cifar10 --data-dir ../shared/cifar10
    python -m cifar.measure.corruption_benchmark runs/robust --reference checkpoints/resnet18-cifar10

--reference names the standard model to measure the corruption error against (Hendrycks & Dietterich's CE: the
errors summed over the severities, divided by the reference's; 100% is as good as the reference, lower is better).
"""

import numpy as np

from cifar.engine.corruptions import BENCHMARK, CORRUPTIONS, EXTRA, MISSING, SEVERITIES, corrupt
from cifar.engine.predict import predict_arrays
from cifar.measure import on_the_test_set
from cifar.runs.folder import CORRUPTIONS_FIGURE, add_measurement, load_run

PER_CLASS = 100  # the subset: the first 100 test images of each class (1,000 images)
SEED = 0
CARD_HEADING = "## Corrupted pictures (CIFAR-10-C)"


def subset(labels: np.ndarray, per_class: int = PER_CLASS) -> np.ndarray:
    """The first `per_class` test images of each class, in test-set order."""
    return np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)]))


def accuracy(model, images: np.ndarray, labels: np.ndarray) -> float:
    return float((predict_arrays(model, images, "none")[0].argmax(1) == labels).mean())


def benchmark(model, images: np.ndarray, labels: np.ndarray, log=print) -> dict:
    """{"clean": accuracy, "accuracy": {corruption: [severity 1..5]}, "mean": over the benchmark's corruptions made
    here, "mean_with_extra": over all}."""
    table = {}
    for name in CORRUPTIONS:
        table[name] = [round(accuracy(model, corrupt(images, name, severity, SEED), labels), 4)
                       for severity in SEVERITIES]
        log(f"{name:18s} " + " ".join(f"{100 * a:5.1f}" for a in table[name]))
    made = [name for name in BENCHMARK if name in CORRUPTIONS]
    return {"clean": round(accuracy(model, images, labels), 4), "accuracy": table,
            "mean": round(float(np.mean([table[name] for name in made])), 4),
            "mean_with_extra": round(float(np.mean(list(table.values()))), 4)}


def corruption_errors(result: dict, reference: dict) -> dict:
    """Each corruption's error summed over the severities, relative to the reference's (1.0: as the reference), and
    their mean over the benchmark's corruptions (mCE)."""
    errors = {name: round(sum(1 - a for a in accuracies) / sum(1 - a for a in reference["accuracy"][name]), 4)
              for name, accuracies in result["accuracy"].items()}
    made = [name for name in BENCHMARK if name in errors]
    return {"per_corruption": errors, "mean": round(float(np.mean([errors[name] for name in made])), 4)}


def card_section(value: dict) -> str:
    reference = value.get("relative_to")
    lines = ["| corruption | " + " | ".join(f"severity {s}" for s in SEVERITIES) + " | mean |"
             + (" CE |" if reference else ""), "|---" * (len(SEVERITIES) + 2 + bool(reference)) + "|"]
    for name, accuracies in value["accuracy"].items():
        extra = " (extra)" if name in EXTRA else ""
        cells = " | ".join(f"{100 * a:.1f}" for a in accuracies)
        ce = f" {100 * reference['per_corruption'][name]:.0f}% |" if reference else ""
        lines.append(f"| {name.replace('_', ' ')}{extra} | {cells} | {100 * np.mean(accuracies):.1f} |{ce}")
    missing = "; ".join(f"{name.replace('_', ' ')} ({why})" for name, why in value["missing"].items())
    against = (f" Corruption error relative to {reference['run']}: mCE **{100 * reference['mean']:.0f}%** (100% is as "
               "good as that model; lower is better)." if reference else "")
    return (f"{CARD_HEADING}\n\nTest accuracy (%) under the CIFAR-10-C corruptions (Hendrycks & Dietterich 2019), made "
            f"here from the authors' formulas, on the first {value['per_class']} test images of each class "
            f"({value['images']} images), one forward pass each: **{100 * value['clean']:.1f}% clean, "
            f"{100 * value['mean']:.1f}% mean** over the {len(value['benchmark_made'])} of the benchmark's 15 "
            f"corruptions made here ({100 * value['mean_with_extra']:.1f}% with the four extra).{against} Not made: "
            f"{missing}.\n\n" + "\n".join(lines) + f"\n\n![corruptions]({CORRUPTIONS_FIGURE})\n\n")


def main(argv=None):
    from cifar.runs.plots import corruption_figure

    parser, args, run, images, labels = on_the_test_set(__doc__, argv, lambda parser: parser.add_argument(
        "--reference", help="run folder of the standard model, already benchmarked: the corruption error is relative "
        "to it"))
    chosen = subset(labels)
    value = {"per_class": PER_CLASS, "images": int(len(chosen)), "seed": SEED, "forward": "plain (no TTA)",
             "benchmark_made": [name for name in BENCHMARK if name in CORRUPTIONS], "missing": MISSING,
             **benchmark(run.model, images[chosen], labels[chosen])}
    if args.reference:
        reference = load_run(args.reference).metrics.get("corruptions")
        if not reference or reference["images"] != value["images"]:
            parser.error(f"{args.reference} has no corruption table on the same images: benchmark it first")
        value["relative_to"] = {"run": str(args.reference), **corruption_errors(value, reference)}
    add_measurement(run.path, "corruptions", value, corruption_figure(value), CORRUPTIONS_FIGURE, CARD_HEADING,
                    card_section(value))
    print(card_section(value))


if __name__ == "__main__":
    main()
