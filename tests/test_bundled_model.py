"""The bundled checkpoint, measured for real: its weights as shipped, on the 10,000 CIFAR-10 test images."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from cifar.evaluate import predict_arrays
from cifar.run_folder import load_run

ROOT = Path(__file__).parent.parent
BUNDLED = ROOT / "checkpoints" / "resnet18-cifar10"
TEST_SET = Path(os.environ.get("CIFAR10_DIR", ROOT.parent / "shared" / "cifar10")) / "test.npz"
# What the README claims for the bundled model (the 30-epoch "full" recipe, 6-view TTA); issue #3 asks
# for >= 93.5% plain and >= 94.0% with TTA.
CLAIMED_ACCURACY = 0.942
CLAIMED_ACCURACY_TTA = 0.949


def test_bundled_weights_are_small_and_complete():
    assert (BUNDLED / "model.safetensors").stat().st_size < 25_000_000
    run = load_run(str(BUNDLED))
    assert run.metrics["test_images"] == 10_000
    assert len(run.misclassified["true"]) == round(10_000 * (1 - run.metrics["test_accuracy_tta"]))


@pytest.mark.skipif(not TEST_SET.exists(), reason=f"CIFAR-10 test set not found at {TEST_SET} (set CIFAR10_DIR)")
def test_bundled_model_accuracy_on_the_real_test_set():
    run = load_run(str(BUNDLED))
    with np.load(TEST_SET) as arrays:
        x, y = arrays["x"], arrays["y"]
    metrics = json.loads((BUNDLED / "metrics.json").read_text())
    views = predict_arrays(run.model, x, metrics["tta"])  # the TTA the app serves (tests/test_evaluate.py: views)
    accuracy = float((views[0].argmax(1) == y).mean())
    accuracy_tta = float((views.mean(0).argmax(1) == y).mean())
    assert accuracy == pytest.approx(metrics["test_accuracy"], abs=2e-4)  # metrics.json was measured, not typed
    assert accuracy_tta == pytest.approx(metrics["test_accuracy_tta"], abs=2e-4)
    assert accuracy >= CLAIMED_ACCURACY and accuracy_tta >= CLAIMED_ACCURACY_TTA
