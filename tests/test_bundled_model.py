"""The bundled checkpoint, measured for real: its weights as shipped, on the 10,000 CIFAR-10 test images."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from cifar.handlers import Demo
from cifar.evaluate import predict_arrays
from cifar.gradcam import DEFAULT_LAYER, ORIGINAL_LAYER, GradCAM
from cifar.inference import image_tensor, load_image, prepare
from cifar.run_folder import load_run

ROOT = Path(__file__).parent.parent
BUNDLED = ROOT / "checkpoints" / "resnet18-cifar10"
EXAMPLES = sorted((ROOT / "examples").glob("*.png"))
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


def test_the_default_layer_shows_evidence_on_every_example():
    # The original project's layer: its output comes before BatchNorm removes each channel's mean, and on
    # this model the Grad-CAM sum there is negative everywhere for most pictures: a blank heatmap.
    run = load_run(str(BUNDLED))
    images = np.stack([prepare(load_image(str(path)))[0] for path in EXAMPLES])
    default, original = GradCAM(run.model, (DEFAULT_LAYER, ORIGINAL_LAYER))(image_tensor(images))[0].transpose(1, 0, 2, 3)
    assert all(cam.max() == 1 for cam in default)
    blank = [path for path, cam in zip(EXAMPLES, original) if not cam.any()]
    assert blank, "no example is blank at the original layer any more: find another image for the caption check"
    # ...and where it is blank, the app says so instead of showing an empty heatmap without a word.
    _, _, caption = Demo(run).explain(str(blank[0]), ORIGINAL_LAYER)
    assert "nothing here counts for this class" in caption
