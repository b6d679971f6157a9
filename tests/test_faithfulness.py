"""ROAD faithfulness against pytorch-grad-cam's own, and the per-method table a run folder carries."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch_grad_cam.metrics.road import NoisyLinearImputer, ROADCombined
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

from cifar.measure import faithfulness_table
from cifar.engine.faithfulness import PERCENTILES, SEED, covered, heatmap_cover, impute, kept_pixels, road
from cifar.engine.explainer import BASELINES, LAYERS, Explainer
from cifar.engine.cam import GradCAM, LayerCAM
from cifar.page.served import ServedModels
from cifar.page.tabs.misclassified import MisclassifiedTab
from cifar.runs.folder import load_run

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def bundled():
    from cifar.engine.predict import image_tensor
    from cifar.engine.pictures import load_image, prepare

    model = load_run(str(ROOT / "checkpoints" / "resnet18-cifar10")).model
    paths = sorted((ROOT / "examples").glob("*.png"))
    return model, image_tensor(np.stack([prepare(load_image(str(path)))[0] for path in paths]))


def test_imputation_equals_the_reference_with_the_same_noise():
    torch.manual_seed(3)
    image, keep = torch.rand(3, 32, 32), np.random.default_rng(3).random((32, 32)) > 0.6
    ours = impute(image, keep, torch.Generator().manual_seed(7))
    torch.manual_seed(7)
    theirs = NoisyLinearImputer()(image, torch.from_numpy(keep.astype(np.float32)))
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    assert torch.equal(ours[:, torch.from_numpy(keep)], image[:, torch.from_numpy(keep)])  # kept pixels stay


@pytest.mark.parametrize("method, layer", [(GradCAM, "layer4"), (GradCAM, "layer1"), (LayerCAM, "layer2")])
def test_road_equals_pytorch_grad_cams_road_combined_on_the_bundled_model(bundled, method, layer):
    """Each of the ten examples' heatmaps, for the predicted class, scored by ours (all at once) and by the
    reference (one image at a time, its global noise seeded as ours is)."""
    model, images = bundled
    cams, logits = method(model, layer)(images)
    cams, targets = cams[:, 0], logits.argmax(1)
    ours = road(model, images, cams, targets).score
    theirs = []
    for i in range(len(images)):
        torch.manual_seed(0)
        reference = ROADCombined(percentiles=list(PERCENTILES))
        theirs.append(reference(images[i:i + 1], cams[i:i + 1], [ClassifierOutputSoftmaxTarget(int(targets[i]))], model)[0])
    np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=0)
    assert np.ptp(ours) > 0.05  # scores that differ between images: the comparison is not of constants


def test_road_scores_a_heatmap_the_same_alone_or_in_a_batch(bundled):
    model, images = bundled
    cams, logits = GradCAM(model, "layer3")(images[:4])
    together = road(model, images[:4], cams[:, 0], logits.argmax(1)).score
    alone = [road(model, images[i:i + 1], cams[i:i + 1, 0], logits.argmax(1)[i:i + 1]).score[0] for i in range(4)]
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_the_models_own_evidence_beats_its_inverse(bundled):
    """What ROAD is for: removing where Grad-CAM looks hurts the class more than removing everywhere else."""
    model, images = bundled
    cams, logits = GradCAM(model, "layer4")(images)
    good = road(model, images, cams[:, 0], logits.argmax(1)).score
    inverted = road(model, images, 1 - cams[:, 0], logits.argmax(1)).score
    assert good.mean() > 0.1 and inverted.mean() < 0 and (good > inverted).mean() >= 0.8


def test_table_command_writes_the_table_into_the_run_and_its_card(tiny_run, tiny_data_dir, tmp_path, monkeypatch):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    monkeypatch.setattr(faithfulness_table, "TABLE_IMAGES", 10)  # one of each class
    faithfulness_table.main([str(run), "--data-dir", str(tiny_data_dir), "--methods", "Grad-CAM", "Eigen-CAM",
                             "--layers", "layer4", "layer3"])
    table = json.loads((run / "faithfulness.json").read_text())
    assert set(table["scores"]) == {*BASELINES, "Grad-CAM", "Eigen-CAM"}
    assert all(set(table["scores"][b]) == set(LAYERS) for b in BASELINES)  # at every layer, whichever were asked for
    assert all(set(table["scores"][m]) == {"layer4", "layer3"} for m in ("Grad-CAM", "Eigen-CAM"))
    assert all(len(scores) == 10 for by_layer in table["scores"].values() for scores in by_layer.values())
    card = (run / "README.md").read_text()
    assert card.count("## Faithfulness of the explanations") == 1 and "| Grad-CAM |" in card
    assert card.index("## Faithfulness") < card.index("## Files")
    # A second run adds rows and keeps the others (the random maps are not drawn again), and the card's section
    # is replaced, not repeated.
    random_scores = table["scores"]["Random"]
    faithfulness_table.main([str(run), "--data-dir", str(tiny_data_dir), "--methods", "LayerCAM", "--layers", "layer4"])
    table = json.loads((run / "faithfulness.json").read_text())
    assert set(table["scores"]) == {*BASELINES, "Grad-CAM", "Eigen-CAM", "LayerCAM"}
    assert table["scores"]["Random"] == random_scores and list(table["scores"]["LayerCAM"]) == ["layer4"]
    card = (run / "README.md").read_text()
    assert card.count("## Faithfulness of the explanations") == 1 and "| LayerCAM | not computed" in card
    # The app reads the table: its gallery shows the stored scores, which equal what the engine computes live.
    loaded = load_run(str(run))
    explainer, wrong, chosen = Explainer(loaded.model), loaded.misclassified, np.array([2, 0, 1])
    for side in ("predicted", "true"):
        _, stored = explainer.gallery_scores(wrong, side, chosen, loaded.faithfulness["misclassified"])
        _, live = explainer.gallery_scores(wrong, side, chosen)
        np.testing.assert_allclose(stored, live, atol=1e-5)  # stored rounded to 5 decimals
    assert all("ROAD" in caption for _, caption in MisclassifiedTab(ServedModels.load(loaded)).misclassified(3, with_gradcam=True)[0])


def table_of(scores: dict) -> dict:
    return {"scores": scores, "test_indices": list(range(100)), "percentiles": list(PERCENTILES)}


def test_the_table_marks_the_best_cell_those_that_beat_every_baseline_and_those_no_better_than_chance():
    rng = np.random.default_rng(0)
    random = {layer: rng.normal(0, 0.1, 100).tolist() for layer in LAYERS}
    edges = {layer: (np.asarray(random[layer]) + 0.05).tolist() for layer in LAYERS}
    centre = {layer: (np.asarray(random[layer]) + 0.1).tolist() for layer in LAYERS}
    good = {layer: (np.asarray(random[layer]) + 0.2).tolist() for layer in LAYERS}
    good["layer4"] = (np.asarray(random["layer4"]) + 0.3).tolist()
    chance = {layer: (np.asarray(random[layer]) + rng.normal(0, 0.1, 100) * 0.01).tolist() for layer in LAYERS}
    centred = {layer: (np.asarray(random[layer]) + 0.08).tolist() for layer in LAYERS}  # beats random and edges only
    text = faithfulness_table.markdown(table_of({"Random": random, "Sobel edges": edges, "Centre blob": centre,
                                                 "Grad-CAM": good, "Eigen-CAM": chance, "LayerCAM": centred}))
    row = {name: next(line for line in text.splitlines() if line.startswith(f"| {name} |"))
           for name in ("Grad-CAM", "Eigen-CAM", "LayerCAM", "Centre blob")}
    assert row["Grad-CAM"].count("**") == 2 and "(chance)" not in row["Grad-CAM"]
    assert row["Grad-CAM"].split(" | ")[4].startswith("**")  # layer4, the best cell
    assert row["Grad-CAM"].count("✓") == len(LAYERS)
    assert row["Eigen-CAM"].count("(chance)") == len(LAYERS) and "✓" not in row["Eigen-CAM"]
    assert "✓" not in row["LayerCAM"] and "(chance)" not in row["LayerCAM"]
    assert "✓" not in row["Centre blob"] and "(chance)" not in row["Centre blob"]  # baselines are not judged
    # A table stopped after its baselines (rows are saved as they finish) still reads: the methods not computed yet.
    baselines_only = faithfulness_table.markdown(table_of({"Random": random, "Sobel edges": edges, "Centre blob": centre}))
    assert "| Grad-CAM | " + " | ".join(["not computed"] * len(LAYERS)) + " |" in baselines_only

def test_the_page_covers_a_picture_as_road_removes_pixels(bundled):
    """/cover's "top 20%" and "everything but the top 20%" are ROAD's most- and least-relevant-first removal at its
    80th and 20th percentiles: the same pixels, filled in the same way (to the page's 8-bit rounding)."""
    model, images = bundled
    cam = GradCAM(model, "layer2")(images[:1])[0][0, 0]
    image = np.uint8(images[0].numpy().transpose(1, 2, 0) * 255 + 0.5)
    for percentile, most_relevant in ((80, True), (20, False)):
        cover = heatmap_cover(cam, 100 - percentile if most_relevant else percentile, most_relevant)
        assert np.array_equal(cover, ~kept_pixels(cam, percentile, most_relevant))
        assert cover.mean() == pytest.approx(0.2 if most_relevant else 0.8, abs=0.01)
        road_filled = impute(torch.from_numpy(image.transpose(2, 0, 1)).float() / 255, ~cover,
                             torch.Generator().manual_seed(SEED))
        np.testing.assert_allclose(covered(image, cover).transpose(2, 0, 1) / 255, road_filled.clamp(0, 1), atol=0.5 / 255 + 1e-6)
        assert np.array_equal(covered(image, cover)[~cover], image[~cover])
