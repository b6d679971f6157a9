"""The test set as a map: the command that makes it (cifar/measure/test_map.py), the bundled runs' maps, and the tab
that draws it and shows an area's images (cifar/page/tabs/test_map.py)."""

import csv
import io
import json
import shutil
import zipfile

import gradio as gr
import numpy as np
import PIL.Image
import pytest

from cifar.dataset import read_test_set
from cifar.engine.test_map import COLOURINGS, MAP_SIZE, TestMap
from cifar.measure import test_map as command
from cifar.page.served import ServedModels
from cifar.page.tabs.test_map import TestMapTab
from cifar.runs.folder import load_run
from tests.conftest import MODELS, ROOT, TEST_SET

BUNDLED = [ROOT / "checkpoints" / name for name in ("resnet18-cifar10", "resnet18-cifar10-robust")]


@pytest.fixture(scope="module")
def mapped_runs(tmp_path_factory, tiny_run, tiny_robust_run, tiny_test_set):
    """Copies of the two tiny runs, each with the map the command makes of the tiny test set."""
    runs = {}
    for name, run in zip(MODELS, (tiny_run, tiny_robust_run)):
        copy = tmp_path_factory.mktemp("mapped") / name
        shutil.copytree(run, copy)
        command.main([str(copy), "--data-dir", str(tiny_test_set)])
        runs[name] = load_run(str(copy))
    return runs


def test_the_command_stores_a_seeded_map_its_settings_and_its_card_section(mapped_runs, tiny_test_set):
    run = mapped_runs[MODELS[0]]
    _, labels = read_test_set(tiny_test_set)
    assert run.test_map["points"].shape == (len(labels), 2) and run.test_map["points"].dtype == np.float32
    assert np.array_equal(run.test_map["labels"], labels)
    value = run.metrics["test_map"]
    assert value["images"] == len(labels) and value["random_state"] == 0 and 0 < value["trustworthiness"] <= 1
    assert (run.path / "test_map.png").is_file() and command.CARD_HEADING in (run.path / "README.md").read_text()
    # Seeded: the same features give the same map.
    features = command.penultimate_features(run.model, read_test_set(tiny_test_set)[0])
    assert features.shape == (len(labels), 512)
    assert np.array_equal(command.reduce_to_map(features), run.test_map["points"])


@pytest.mark.parametrize("folder", BUNDLED, ids=lambda folder: folder.name)
def test_each_bundled_run_carries_its_map_of_the_whole_test_set(folder):
    """10,000 points, made with the test set's labels, whose neighbourhoods are the model's classes: for 95% of the
    images the class most of its 10 nearest points are predicted as is its own prediction (a map that ignored the
    features would give about 10%)."""
    run = load_run(str(folder))
    points, labels = run.test_map["points"], run.test_map["labels"]
    assert points.shape == (10_000, 2) and np.isfinite(points).all()
    if TEST_SET.exists():
        assert np.array_equal(labels, read_test_set(TEST_SET)[1])
    predicted = run.predictions["logits_tta"].argmax(1)
    sample = np.random.default_rng(0).choice(len(points), 1000, replace=False)
    distances = ((points[sample, None] - points[None]) ** 2).sum(-1)
    nearest = np.argsort(distances, 1)[:, 1:11]
    agree = np.mean([np.bincount(predicted[n], minlength=10).argmax() == predicted[i] for i, n in zip(sample, nearest)])
    assert agree > 0.95, agree
    assert run.metrics["test_map"]["trustworthiness"] > 0.95
    assert run.metrics["test_map"]["images"] == 10_000


def test_points_are_chosen_by_area_and_by_paint():
    test_map = TestMap(np.array([[0, 0], [1, 1], [2, 2], [10, 10]], np.float32))
    assert test_map.in_area(0.5, 2.5, 0.5, 2.5).tolist() == [1, 2]
    painted = np.zeros((MAP_SIZE, MAP_SIZE, 4), np.uint8)
    column, row = test_map.pixels[3]
    painted[row - 2:row + 3, column - 2:column + 3] = 255  # a dot on the last point
    assert test_map.under(painted).tolist() == [3]
    assert test_map.pixels[3].tolist()[1] < test_map.pixels[0].tolist()[1]  # y upwards, as drawn


def test_the_tab_draws_each_colouring_and_shows_an_area_mistakes_first(mapped_runs, tiny_test_set):
    tab = TestMapTab(ServedModels.load(mapped_runs, test_set=read_test_set(tiny_test_set)))
    drawn = {by: np.asarray(PIL.Image.open(tab.test_map(by))) for by in COLOURINGS}
    assert all(image.shape == (MAP_SIZE, MAP_SIZE, 3) for image in drawn.values())
    assert len({image.tobytes() for image in drawn.values()}) == len(COLOURINGS)

    x_min, x_max, y_min, y_max = tab.maps[MODELS[0]].map.bounds
    gallery, summary, shown = tab.map_area(x_min, x_max, y_min, y_max, "Grad-CAM", "layer2", "predicted", 40)
    mapped = tab.maps[MODELS[0]]
    wrong = mapped.predicted != mapped.labels
    assert shown == [*np.flatnonzero(wrong), *np.flatnonzero(~wrong)]  # every point, mistakes first
    assert len(gallery) == len(shown) and gallery[0][1].startswith(f"#{shown[0]} ")
    assert summary.startswith(f"**{len(shown)} test images** in the area ({len(shown)} shown, mistakes first): "
                              f"{wrong.sum()} wrong")
    assert f"{MODELS[1]} answers otherwise on" in summary
    assert tab.map_area(1e6, 2e6, 1e6, 2e6)[1] == "No test image lies in that area: paint over some points."

    exported = tab.map_export(x_min, x_max, y_min, y_max, "Grad-CAM", "layer2", "predicted", 5)
    with zipfile.ZipFile(exported) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("index.csv").decode())))
        manifest = json.loads(archive.read("manifest.json"))
    assert [int(row["index"]) for row in rows] == shown[:5]
    assert manifest["selection"]["area"] == [x_min, x_max, y_min, y_max]

    with pytest.raises(gr.Error, match="Paint over an area of the map first"):
        tab.show_painted({"background": None, "layers": [], "composite": None}, "Grad-CAM", "layer2", "predicted", 5, 0.5)


def test_without_the_test_set_the_map_and_its_summaries_are_shown_and_the_pictures_asked_for(mapped_runs):
    tab = TestMapTab(ServedModels.load(mapped_runs))
    assert PIL.Image.open(tab.test_map("right or wrong")).size == (MAP_SIZE, MAP_SIZE)
    x_min, x_max, y_min, y_max = tab.maps[MODELS[0]].map.bounds
    gallery, summary, shown = tab.map_area(x_min, x_max, y_min, y_max)
    assert gallery == [] and len(shown) == 25 and "Start the app with `--test-set`" in summary
    with pytest.raises(gr.Error, match="needs the test set"):
        tab.map_export(x_min, x_max, y_min, y_max)
