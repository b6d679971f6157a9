"""The table of every faithfulness metric (cifar/measure/metrics_table.py): the command on a tiny run, and the bundled
runs' stored tables recomputed in part with the reference libraries."""

import json
from functools import partial

import numpy as np
import pytest
import pytorch_grad_cam as reference_cams
import torch
from pytorch_grad_cam.metrics.arcc import ARCC
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
from pytorch_grad_cam.metrics.road import ROADCombined
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget
from scipy.stats import spearmanr
from torchcam.metrics import DeletionInsertionMetric

from cifar.engine.explainer import BASELINES, BLURRED, LAYERS, METRICS, Explainer
from cifar.engine.faithfulness import PERCENTILES, SEED
from cifar.engine.predict import image_tensor
from cifar.measure import metrics_table
from cifar.runs.folder import load_run
from tests.conftest import ROOT, needs_test_set, read_test_set
from tests.test_metrics import GivenMaps


def test_the_command_writes_every_metric_of_each_map_and_its_controls_into_the_run(tiny_run, tiny_data_dir, tmp_path,
                                                                                    monkeypatch):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    monkeypatch.setattr(metrics_table, "IMAGES_PER_CLASS", 1)
    monkeypatch.setattr(metrics_table, "STEPS", 2)  # deletion and insertion in 3 points: what is stored, not the curve
    metrics_table.main([str(run), "--data-dir", str(tiny_data_dir), "--methods", "Grad-CAM", "--layers", "layer4"])
    table = json.loads((run / "faithfulness.json").read_text())["metrics"]
    assert set(table["scores"]) == {"Grad-CAM", "Grad-CAM" + BLURRED, *BASELINES}
    assert list(table["scores"]["Grad-CAM"]) == ["layer4"] and set(table["scores"]["Random"]) == set(LAYERS)
    assert all(list(by_metric) == list(METRICS) and all(len(v) == 10 for v in by_metric.values())
               for by_layer in table["scores"].values() for by_metric in by_layer.values())
    card = (run / "README.md").read_text()
    assert card.count(metrics_table.CARD_HEADING) == 1 and "Which method to trust for what" in card
    # A second call adds a row and keeps the others; the baselines are not computed again.
    random = table["scores"]["Random"]
    metrics_table.main([str(run), "--data-dir", str(tiny_data_dir), "--methods", "LayerCAM", "--layers", "layer3"])
    table = json.loads((run / "faithfulness.json").read_text())["metrics"]
    assert table["scores"]["Random"] == random and "Grad-CAM" in table["scores"] and "LayerCAM" in table["scores"]
    assert (run / "README.md").read_text().count(metrics_table.CARD_HEADING) == 1


def test_the_agreement_is_spearmans_correlation_of_the_metrics_rankings():
    """Three maps at one layer: ROAD ranks them a > b > c, deletion (lower is better) the same, average drop reversed."""
    def row(road, drop, deletion):
        values = dict.fromkeys(METRICS, [0.5])
        return {"layer4": {**values, "ROAD": [road], "Average drop": [drop], "Deletion": [deletion]}}

    table = {"scores": {"a": row(0.3, 0.9, 0.1), "b": row(0.2, 0.5, 0.2), "c": row(0.1, 0.1, 0.3)}}
    agreement = metrics_table.agreement(table)
    assert agreement[("ROAD", "Deletion")] == pytest.approx(1)
    assert agreement[("ROAD", "Average drop")] == pytest.approx(-1)
    assert ("ROAD", "ARCC") not in agreement  # ARCC ties everywhere: no ranking to compare
    assert spearmanr([3, 2, 1], [1, 2, 3]).statistic == pytest.approx(-1)


@needs_test_set
@pytest.mark.parametrize("bundled, method, layer", [("resnet18-cifar10", "Grad-CAM", "layer4"),
                                                    ("resnet18-cifar10-robust", "LayerCAM", "layer2")])
def test_a_slice_of_the_bundled_runs_table_is_what_the_references_compute(bundled, method, layer):
    """One method x layer of each bundled run's stored table, on its 30 pictures: ROAD and the confidence change by
    pytorch-grad-cam, deletion and insertion by torch-cam (the table's 10 steps) and ARCC by pytorch-grad-cam (its
    coherency's second map by the reference's own method, of the logit), from our maps, on every fifth picture."""
    run = load_run(str(ROOT / "checkpoints" / bundled))
    table = run.faithfulness["metrics"]
    stored = table["scores"][method][layer]
    x, _ = read_test_set()
    images = x[table["test_indices"]]
    maps, classes = Explainer(run.model).heatmaps(images, (layer,), method)
    cams, tensors, model = maps[:, 0], image_tensor(images), run.model
    targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in classes]
    change = CamMultImageConfidenceChange()(tensors, cams, targets, model)
    before = torch.softmax(model(tensors), 1).detach().numpy()[np.arange(len(classes)), classes]
    np.testing.assert_allclose(stored["Average drop"], np.maximum(-change, 0) / (before + 1e-7), atol=2e-5)
    road = []
    for i in range(len(images)):
        torch.manual_seed(SEED)
        road.append(ROADCombined(percentiles=list(PERCENTILES))(tensors[i:i + 1], cams[i:i + 1], targets[i:i + 1],
                                                              model)[0])
    np.testing.assert_allclose(stored["ROAD"], road, atol=2e-5)
    for i in range(0, len(images), 5):
        torchcam = DeletionInsertionMetric(GivenMaps(model, cams[i:i + 1]), partial(torch.softmax, dim=-1),
                                           steps=metrics_table.STEPS)
        torchcam.update(tensors[i:i + 1], [int(classes[i])])
        summary = torchcam.summary()
        assert stored["Deletion"][i] == pytest.approx(summary["deletion_auc"], abs=2e-5)
        assert stored["Insertion"][i] == pytest.approx(summary["insertion_auc"], abs=2e-5)
        torch.manual_seed(SEED)
        arcc = ARCC(getattr(reference_cams, method.replace("-", ""))(model=model, target_layers=[
            dict(model.named_modules())[layer]]), road_percentiles=list(PERCENTILES))
        of_logits = [ClassifierOutputTarget(int(classes[i]))]
        arcc.coherency = partial(lambda coherency, tensor, maps, _, *rest: coherency(tensor, maps, of_logits, *rest),
                                 arcc.coherency)
        assert stored["ARCC"][i] == pytest.approx(arcc(tensors[i:i + 1], cams[i:i + 1], targets[i:i + 1], model)[0],
                                                  abs=1e-4)
