"""Adds the calibration (cifar/engine/calibration.py) to a finished run that lacks it, or fits it again: metrics.json,
calibration.png and the model card, from the run's predictions.npz (and its validation split, when it has one that
its weights never started from: calibration.fits_on_validation).

    python -m cifar.measure.recalibrate checkpoints/resnet18-cifar10 --data-dir ../shared/cifar10
"""

import argparse
import os

import numpy as np

from cifar.engine.calibration import CARD_HEADING, card_section, fits_on_validation, run_calibration
from cifar.dataset import load_cifar10
from cifar.engine.predict import tta_of_views
from cifar.training.evaluate import validation_views
from cifar.runs.plots import reliability_figure
from cifar.runs.folder import CALIBRATION_FIGURE, PREDICTIONS_FILE, add_measurement, load_run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run folder")
    parser.add_argument("--data-dir", default=os.environ.get("CIFAR10_DIR"), help="folder with train.npz, test.npz")
    args = parser.parse_args(argv)
    run = load_run(args.run)
    data = load_cifar10(args.data_dir)
    with np.load(run.path / PREDICTIONS_FILE) as predictions:
        test_logits = predictions["logits_tta"]
    config, validation = run.history["config"], None
    if fits_on_validation(config):
        views, y_val = validation_views(run.model, data, config)
        validation = (tta_of_views(views, config["tta"]), y_val)
    calibration = run_calibration(test_logits, data["test"][1], validation)
    add_measurement(run.path, "calibration", calibration, reliability_figure(calibration), CALIBRATION_FIGURE,
                    CARD_HEADING, card_section(calibration))
    print(card_section(calibration))


if __name__ == "__main__":
    main()
