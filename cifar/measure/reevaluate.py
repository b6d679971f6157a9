"""A run's whole test pass again: every TTA view of every test image, on the weights as shipped. It checks that
the pass gives the accuracies in metrics.json and rewrites predictions.npz, the per-image logits that the test
suite holds the run to on a sample of the test set (the whole pass is 60,000 forward passes for the bundled run's
6 views: about 12 minutes of a 2-core CPU, too long for every test run).

    python -m cifar.measure.reevaluate checkpoints/resnet18-cifar10 --data-dir ../shared/cifar10
"""

import argparse
import os
import sys

from cifar.dataset import load_cifar10
from cifar.engine.predict import predict_arrays
from cifar.training.evaluate import test_predictions
from cifar.files import atomic_write
from cifar.runs.folder import PREDICTIONS_FILE, load_run, save_npz

TOLERANCE = 2e-4  # 2 of the 10,000 test images: BLAS summation order may flip a near tie, nothing more


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run folder")
    parser.add_argument("--data-dir", default=os.environ.get("CIFAR10_DIR"), help="folder with test.npz")
    args = parser.parse_args(argv)
    run = load_run(args.run)
    x, y = load_cifar10(args.data_dir)["test"]
    predictions = test_predictions(predict_arrays(run.model, x, run.metrics["tta"]))
    wrong = []
    for key, stated in (("logits", "test_accuracy"), ("logits_tta", "test_accuracy_tta")):
        accuracy = float((predictions[key].argmax(1) == y).mean())
        print(f"{stated}: {accuracy:.4f} (metrics.json: {run.metrics[stated]:.4f})")
        if abs(accuracy - run.metrics[stated]) > TOLERANCE:
            wrong.append(stated)
    if wrong:
        print(f"error: {', '.join(wrong)} differ from metrics.json: {PREDICTIONS_FILE} not written", file=sys.stderr)
        return 1
    atomic_write(run.path / PREDICTIONS_FILE, lambda tmp: save_npz(tmp, predictions))
    print(f"wrote {run.path / PREDICTIONS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
