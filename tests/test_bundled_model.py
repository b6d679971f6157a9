"""The bundled checkpoints, measured for real: their weights as shipped, on the 10,000 CIFAR-10 test images."""

import json
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from cifar.page.served import ServedModels
from cifar.page.tabs.compare import CompareTab
from cifar.page.tabs.predict import PredictTab
from cifar.engine.predict import predict_arrays
from cifar.engine.explainer import DEFAULT_LAYER, ORIGINAL_LAYER
from cifar.engine.cam import METHODS, GradCAM
from cifar.engine.predict import image_tensor
from cifar.engine.pictures import load_image, prepare
from cifar.runs.folder import load_run
from tests.conftest import needs_test_set, read_test_set

ROOT = Path(__file__).parent.parent
BUNDLED = ROOT / "checkpoints" / "resnet18-cifar10"
EXAMPLES = sorted((ROOT / "examples").glob("*.png"))
ROBUST = ROOT / "checkpoints" / "resnet18-cifar10-robust"
SAMPLE = 200  # test images the model is run on in every test run
# What the README claims for each bundled model (plain, with its 6-view TTA): the standard one is the 30-epoch
# "full" recipe (issue #3 asks for >= 93.5% plain and >= 94.0% with TTA); the robust one its AugMix fine-tune (#24).
CLAIMED = {BUNDLED: (0.942, 0.949), ROBUST: (0.943, 0.951)}
both = pytest.mark.parametrize("folder", list(CLAIMED), ids=lambda folder: folder.name)


@both
def test_bundled_weights_are_small_and_complete(folder):
    assert (folder / "model.safetensors").stat().st_size < 25_000_000
    run = load_run(str(folder))
    assert run.metrics["test_images"] == 10_000
    assert len(run.misclassified["true"]) == round(10_000 * (1 - run.metrics["test_accuracy_tta"]))


@needs_test_set
@both
def test_the_stored_predictions_give_the_stated_accuracies(folder):
    # predictions.npz: every test image's logits, plain and with the run's TTA, from its whole test pass
    # (python -m cifar.measure.reevaluate repeats that pass: 12 minutes, so not in every test run).
    _, y = read_test_set()
    metrics = json.loads((folder / "metrics.json").read_text())
    with np.load(folder / "predictions.npz") as stored:
        plain, tta = stored["logits"].argmax(1), stored["logits_tta"].argmax(1)
    assert float((plain == y).mean()) == metrics["test_accuracy"]  # metrics.json was measured, not typed
    assert float((tta == y).mean()) == metrics["test_accuracy_tta"]
    claimed, claimed_tta = CLAIMED[folder]
    assert metrics["test_accuracy"] >= claimed and metrics["test_accuracy_tta"] >= claimed_tta
    wrong = load_run(str(folder)).misclassified  # the gallery holds exactly the TTA prediction's mistakes
    np.testing.assert_array_equal(wrong["index"], np.flatnonzero(tta != y))
    np.testing.assert_array_equal(wrong["predicted"], tta[tta != y])


@needs_test_set
@both
def test_the_model_reproduces_its_stored_predictions_on_a_random_sample(folder):
    # A new sample every run: over many runs every image is checked, each run costs 1,200 forward passes.
    x, _ = read_test_set()
    seed = int(np.random.SeedSequence().entropy % 2**32)
    sample = np.sort(np.random.default_rng(seed).choice(len(x), SAMPLE, replace=False))
    run = load_run(str(folder))
    views = predict_arrays(run.model, x[sample], run.metrics["tta"])
    with np.load(folder / "predictions.npz") as stored:
        message = f"seed {seed}: the model's logits differ from predictions.npz"
        np.testing.assert_allclose(views[0], stored["logits"][sample], atol=1e-3, err_msg=message)
        np.testing.assert_allclose(views.mean(0), stored["logits_tta"][sample], atol=1e-3, err_msg=message)


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
    _, _, caption = PredictTab(ServedModels.load(run)).explain(str(blank[0]), ORIGINAL_LAYER)
    assert "nothing here counts for this class" in caption


def test_every_method_side_by_side_most_faithful_first_each_picture_its_own():
    # The bundled model, where the methods' ROAD scores differ (on the tiny test model they are all 0.00 and any
    # order is "sorted"). Scores and pictures computed here without the app.
    from cifar.engine.faithfulness import road
    from cifar.engine.pictures import overlay

    run = load_run(str(BUNDLED))
    gallery, _ = CompareTab(ServedModels.load(run)).compare_methods(str(EXAMPLES[5]), "layer3")
    small, display = prepare(load_image(str(EXAMPLES[5])))
    image, scores, expected = image_tensor(small), {}, {}
    for name, method in METHODS.items():
        cams, logits = method(run.model, "layer3")(image)
        scores[name] = float(road(run.model, image, cams[:, 0], logits.argmax(1).cpu()).score[0])
        expected[name] = overlay(display, cams[0, 0], 0.5).astype(int)
    order = sorted(METHODS, key=lambda name: -scores[name])
    assert len(set(order[:3])) == 3 and len({round(s, 2) for s in scores.values()}) > 3  # an order to get wrong
    assert [caption.split(" · ")[0] for _, caption in gallery] == order
    for (path, _), name in zip(gallery, order):
        drawn = np.asarray(PIL.Image.open(path).convert("RGB")).astype(int)
        distances = {other: float(np.abs(drawn - picture).mean()) for other, picture in expected.items()}
        assert distances[name] < 2 and distances[name] == min(distances.values()), (name, distances)
