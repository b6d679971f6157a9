"""The whole test set on the page (#23, part 4): each selection checked against a plain loop over the test images,
what /export returns against what /browse shows and against the engine's own maps, and each class's mean heatmap."""

import csv
import io
import json
import math
import subprocess
import sys
import zipfile

import numpy as np
import PIL.Image
import pytest

from cifar.engine.explainer import Explainer
from cifar.runs.folder import load_run
from cifar.measure.class_heatmaps import CARD_HEADING
from cifar.engine.test_set import CENTRE, TestSet, centre_share, class_means
from cifar.dataset import TestSetError, read_test_set
from tests.conftest import ROOT, TEST_SET, needs_test_set, synthetic_cifar

CLASSES = [f"class{c}" for c in range(10)]


def plain_softmax_max(row, temperature):
    exps = [math.exp(v / temperature) for v in row]
    return max(exps) / sum(exps)


@pytest.fixture(scope="module")
def random_answers():
    """A TestSet of 300 images whose logits are drawn at random (no model runs: selection needs only the answers)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 300)
    logits = rng.normal(0, 2, (300, 10)).astype(np.float32)
    logits[np.arange(300), labels] += rng.uniform(0, 4, 300)  # mostly right, some wrong, confidences spread
    images = rng.integers(0, 256, (300, 32, 32, 3), dtype=np.uint8)
    return TestSet(images, labels, CLASSES, explainer=None, tta="none", stored_logits=logits, temperature=0.7)


@pytest.mark.parametrize("true_class, predicted_class, correctness, low, high", [
    (None, None, "all", 0.0, 1.0), (3, None, "all", 0.0, 1.0), (None, 5, "wrong", 0.0, 1.0),
    (None, None, "right", 0.5, 0.9), (2, 2, "all", 0.95, 1.0), (None, None, "wrong", 0.0, 0.4)])
def test_a_selection_is_every_matching_image_in_test_set_order(random_answers, true_class, predicted_class,
                                                               correctness, low, high):
    expected = []
    for i, (row, label) in enumerate(zip(random_answers.logits.tolist(), random_answers.labels)):
        predicted = row.index(max(row))
        confidence = plain_softmax_max(row, 0.7)  # the calibrated confidence: logits / temperature
        if ((true_class is None or label == true_class) and (predicted_class is None or predicted == predicted_class)
                and (correctness == "all" or (predicted == label) == (correctness == "right"))
                and low <= confidence <= high):
            expected.append(i)
    selection = random_answers.select(true_class, predicted_class, correctness, (low, high))
    assert selection.indices.tolist() == expected and selection.matching == len(expected)
    first_three = random_answers.select(true_class, predicted_class, correctness, (low, high), 3)
    assert first_three.indices.tolist() == expected[:3]


def test_the_selections_cover_the_whole_range_of_answers(random_answers):
    """The cases above are not all empty: right and wrong, confident and not, are all there."""
    counts = [random_answers.select(correctness=c, confidence=r).matching
              for c in ("right", "wrong") for r in ((0, 0.5), (0.5, 1))]
    assert min(counts) >= 10 and sum(counts) == 300


def test_confidence_is_the_calibrated_probability_of_the_predicted_class(random_answers):
    for row, confidence in zip(random_answers.logits.tolist()[:20], random_answers.confidence[:20]):
        assert confidence == pytest.approx(plain_softmax_max(row, 0.7), rel=1e-5)


def test_centre_share_is_the_mass_in_the_central_quarter():
    uniform = np.ones((32, 32))
    centre_only = np.zeros((32, 32))
    centre_only[CENTRE] = 1
    corner = np.zeros((32, 32))
    corner[:4, :4] = 1
    np.testing.assert_allclose(centre_share(np.stack([uniform, centre_only, corner])), [0.25, 1.0, 0.0])
    maps = np.random.default_rng(1).random((5, 32, 32))
    by_loop = [sum(m[y, x] for y in range(8, 24) for x in range(8, 24)) / m.sum() for m in maps]
    np.testing.assert_allclose(centre_share(maps), by_loop, rtol=1e-9)
    assert np.isnan(centre_share(np.zeros((32, 32))))  # an empty map has no mass to share


def test_class_means_average_each_class_alone():
    maps = np.random.default_rng(2).random((40, 32, 32))
    labels = np.arange(40) % 10
    means = class_means(maps, labels, 10)
    for c in range(10):
        np.testing.assert_allclose(means[c], sum(maps[i] for i in range(40) if labels[i] == c) / 4)


def test_stored_predictions_of_another_test_set_are_refused():
    with pytest.raises(TestSetError, match="cover 5 test images"):
        TestSet(np.zeros((4, 32, 32, 3), np.uint8), np.zeros(4, np.int64), CLASSES, None, "none",
                np.zeros((5, 10), np.float32))


@pytest.mark.parametrize("content", [b"not an npz", None])
def test_a_test_set_that_is_not_one_is_named(tmp_path, content):
    path = tmp_path / "test.npz"
    if content is None:
        np.savez(path, x=np.zeros((3, 28, 28), np.uint8), y=np.zeros(3))  # MNIST-shaped
    else:
        path.write_bytes(content)
    with pytest.raises(TestSetError, match=str(path)):
        read_test_set(tmp_path)


# -- Through the page's API ----------------------------------------------------------------------------------
def test_browse_shows_the_selection_the_test_set_gives(client, tiny_run, tiny_test_set):
    images, labels = read_test_set(tiny_test_set)
    run = load_run(str(tiny_run))
    predicted = run.predictions["logits_tta"].argmax(1)  # the answers stored with the run
    gallery, summary, mean_map, indices = client.predict("any", "any", "wrong", 0, 1, "Grad-CAM", "layer4", "predicted",
                                                         100, 0.5, api_name="/browse")
    wrong = [i for i in range(len(labels)) if predicted[i] != labels[i]]
    assert indices == wrong and len(gallery) == len(wrong) and f"of {len(wrong)} matching" in summary
    for picture, i in zip(gallery, indices):
        assert picture["caption"].startswith(f"#{i} {run.classes[labels[i]]} → {run.classes[predicted[i]]} ✗")
    for true_class in (0, 7):
        _, _, _, chosen = client.predict(run.classes[true_class], "any", "all", 0, 1, "Grad-CAM", "layer4", "true", 3,
                                         0.5, api_name="/browse")
        assert chosen == [i for i in range(len(labels)) if labels[i] == true_class][:3]
    assert mean_map is not None and "of its mass in the central quarter" in summary


@pytest.mark.parametrize("arguments, says", [
    (("any", "any", "all", 0.8, 0.2, "Grad-CAM", "layer4", "predicted", 5, 0.5), "lowest first"),
    # an unknown class: refused by Gradio's own check of a dropdown's value, with its message
    (("kitten", "any", "all", 0, 1, "Grad-CAM", "layer4", "predicted", 5, 0.5), "kitten"),
    (("any", "any", "all", 0, 1, "Score-CAM", "layer4", "predicted", 11, 0.5), "between 1 and 10"),
    (("any", "any", "all", 0, 1, "Grad-CAM", "layer4", "neither", 5, 0.5), "neither"),
])
def test_a_selection_that_cannot_be_made_is_a_clear_message(client, arguments, says):
    from gradio_client.exceptions import AppError

    for endpoint in ("/browse", "/export"):
        with pytest.raises(AppError, match=says):
            client.predict(*arguments, api_name=endpoint)


def test_export_is_the_selection_browse_shows_with_its_maps_and_scores(client, tiny_run, tiny_test_set):
    arguments = ("any", "any", "all", 0, 1, "Grad-CAM", "layer2", "true", 6, 0.5)
    _, _, _, indices = client.predict(*arguments, api_name="/browse")
    archive = zipfile.ZipFile(client.predict(*arguments, api_name="/export"))
    rows = list(csv.DictReader(io.StringIO(archive.read("index.csv").decode())))
    assert [int(row["index"]) for row in rows] == indices == list(range(6))

    run, (images, labels) = load_run(str(tiny_run)), read_test_set(tiny_test_set)
    explainer = Explainer(run.model)
    maps = explainer.heatmaps(images[indices], ("layer2",), "Grad-CAM", labels[indices])[0][:, 0]
    road = explainer.road(images[indices], maps[:, None], labels[indices]).score[:, 0]
    logits = run.predictions["logits_tta"] / run.metrics["calibration"]["temperature"]
    for row, i, heatmap, score in zip(rows, indices, maps, road):
        assert (row["true"], row["predicted"]) == (run.classes[labels[i]], run.classes[logits[i].argmax()])
        assert float(row["confidence"]) == pytest.approx(plain_softmax_max(logits[i].tolist(), 1.0), abs=1e-6)
        assert float(row["road"]) == pytest.approx(float(score), abs=1e-5)
        np.testing.assert_array_equal(np.asarray(PIL.Image.open(archive.open(f"images/{i:05d}.png"))), images[i])
        np.testing.assert_allclose(np.load(archive.open(f"heatmaps/{i:05d}.npy")), heatmap, atol=1e-6)
        assert PIL.Image.open(archive.open(f"heatmaps/{i:05d}.png")).size == (128, 128)
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["method"] == "Grad-CAM" and manifest["layer"] == "layer2" and manifest["tta"] == run.metrics["tta"]
    assert manifest["confidence"] == "calibrated" and manifest["selection"]["exported"] == 6
    assert manifest["model"]["run"] == str(tiny_run) and len(manifest["model"]["weights_sha256"]) == 64
    assert {"torch", "gradio", "numpy", "python"} <= set(manifest["versions"])


def test_the_app_says_when_a_test_set_cannot_be_browsed(tiny_run, tmp_path):
    bad = tmp_path / "test.npz"
    bad.write_bytes(b"not an npz")
    result = subprocess.run([sys.executable, "app.py", "--model", str(tiny_run), "--test-set", str(bad)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and f"error: cannot browse the test set: {bad}" in result.stderr
    assert "Traceback" not in result.stderr


# -- Each class's mean heatmap: the command ----------------------------------------------------------------------
def test_the_class_heatmaps_command_writes_each_class_into_the_run(tiny_run, tmp_path):
    import shutil

    run_dir = shutil.copytree(tiny_run, tmp_path / "run")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    images, labels = synthetic_cifar()["test"]
    np.savez(data_dir / "test.npz", x=images, y=labels)
    subprocess.run([sys.executable, "-m", "cifar.measure.class_heatmaps", str(run_dir), "--data-dir", str(data_dir)], cwd=ROOT,
                   check=True, capture_output=True, timeout=300)
    value = json.loads((run_dir / "metrics.json").read_text())["class_heatmaps"]
    maps = Explainer(load_run(str(run_dir)).model).heatmaps(images, ("layer4",), "Grad-CAM", labels)[0][:, 0]
    for c, name in enumerate(load_run(str(run_dir)).classes):
        mine = [m for m, label in zip(maps, labels) if label == c]
        with_mass = [m for m in mine if m.sum() > 0]
        by_loop = [sum(m[y, x] for y in range(8, 24) for x in range(8, 24)) / m.sum() for m in with_mass]
        mean = sum(mine) / len(mine)
        expected = (mean[8:24, 8:24].sum() / mean.sum() if with_mass else None, np.mean(by_loop) if with_mass else None)
        assert (value["centre_share_of_mean_map"][name], value["centre_share_per_image"][name]) == pytest.approx(
            expected, abs=1e-4)
    assert value["images"] == len(images) and (run_dir / "class_heatmaps.png").is_file()
    assert CARD_HEADING in (run_dir / "README.md").read_text()


@needs_test_set
@pytest.mark.parametrize("name, automobile_percent", [("resnet18-cifar10", 32), ("resnet18-cifar10-robust", 36)])
def test_the_bundled_runs_class_heatmaps_are_what_the_protocol_gives(name, automobile_percent):
    """One class recomputed in full (automobile, the model cards' 32% and 36%: its 1,000 test images), against the
    stored shares."""
    run = load_run(str(ROOT / "checkpoints" / name))
    value = run.metrics["class_heatmaps"]
    images, labels = read_test_set(TEST_SET)
    car = run.classes.index("automobile")
    mine = labels == car
    maps = Explainer(run.model).heatmaps(images[mine], ("layer4",), "Grad-CAM", labels[mine])[0][:, 0]
    assert value["images"] == 10_000 and (value["method"], value["layer"]) == ("Grad-CAM", "layer4")
    assert value["centre_share_of_mean_map"]["automobile"] == pytest.approx(float(centre_share(maps.mean(0))), abs=2e-4)
    assert value["centre_share_per_image"]["automobile"] == pytest.approx(float(np.nanmean(centre_share(maps))), abs=2e-4)
    assert round(100 * value["centre_share_of_mean_map"]["automobile"]) == automobile_percent
