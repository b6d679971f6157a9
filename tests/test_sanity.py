"""The model-randomization sanity check (cifar/measure/sanity.py): which weights it re-initialises, its similarity measures
against scikit-image and scipy, the protocol on methods whose answer is known, and the bundled run's stored table."""

import json

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

from cifar.measure import sanity
from cifar.engine.model import ResNet18
from cifar.runs.folder import load_run
from tests.conftest import ROOT, needs_test_set, read_test_set, synthetic_cifar

BUNDLED_RUNS = [ROOT / "checkpoints" / name for name in ("resnet18-cifar10", "resnet18-cifar10-robust")]


def parameters_of(model, prefix):
    return {name: p for name, p in model.state_dict().items() if name.startswith(prefix)}


def test_the_cascade_reinitialises_its_stages_and_nothing_else():
    torch.manual_seed(0)
    model = ResNet18().eval()
    with torch.no_grad():
        for value in model.state_dict().values():  # weights and running statistics, far from a fresh initialisation
            if value.is_floating_point():
                value.add_(1.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    changed = sanity.randomized(model, ["fc", "layer4", "stem"])
    for name, value in changed.state_dict().items():
        moved = name.startswith(("fc.", "layer4.", "conv1.", "bn1."))
        assert (not torch.equal(value, before[name])) == moved or "num_batches" in name, name
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the model itself untouched
    again = sanity.randomized(model, ["layer4"])  # the same stage, the same new weights, with or without others
    assert all(torch.equal(v, parameters_of(changed, "layer4.")[k]) for k, v in parameters_of(again, "layer4.").items())


def test_ssim_equals_scikit_images():
    rng = np.random.default_rng(0)
    a = rng.random((3, 32, 32))
    b = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1)
    expected = [structural_similarity(x, y, data_range=1.0) for x, y in zip(a, b)]
    np.testing.assert_allclose(sanity.ssim(a, b), expected, atol=1e-9)


def test_spearman_equals_scipys_and_a_blank_map_keeps_no_order():
    rng = np.random.default_rng(1)
    a, b = rng.random((32, 32)), rng.random((32, 32))
    b[:8] = 0  # ties, as a ReLU'd map has
    assert sanity.spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic)
    assert sanity.spearman(a, a ** 3) == pytest.approx(1.0)  # a rank measure: any increasing function keeps it
    assert sanity.spearman(a, np.zeros_like(a)) == 0.0


def test_maps_that_ignore_the_weights_survive_and_grad_cam_does_not(tiny_run):
    """The protocol on answers known in advance: the Sobel and centre maps never change, Grad-CAM's follow the logits
    (randomizing fc alone already scrambles them)."""
    images = synthetic_cifar()["test"][0][:10]
    table = sanity.cascade(load_run(str(tiny_run)).model, images, ["Grad-CAM", *sanity.BASELINES],
                           layers=("layer4",), log=lambda *_: None)
    for baseline in sanity.BASELINES:
        for measure in ("spearman", "ssim"):
            assert [mean for mean, _ in table[baseline]["layer4"][measure]] == pytest.approx([1.0] * len(sanity.CASCADE))
    grad_cam = table["Grad-CAM"]["layer4"]["spearman"]
    assert len(grad_cam) == len(sanity.CASCADE) and max(mean for mean, _ in grad_cam) < 0.6


@needs_test_set
@pytest.mark.parametrize("bundled", BUNDLED_RUNS, ids=lambda path: path.name)
def test_the_bundled_runs_table_is_what_the_protocol_gives(bundled):
    """Grad-CAM's row recomputed on the same 100 images (the baselines' rows, always 1, are the tiny test's); the
    card and the figure."""
    stored = json.loads((bundled / "metrics.json").read_text())["randomization"]
    x, y = read_test_set()
    indices = sanity.image_indices(y)
    assert stored["test_indices"] == indices.tolist() and len(indices) == 100
    assert set(stored["methods"]) >= set(sanity.DEFAULT_METHODS)
    again = sanity.cascade(load_run(str(bundled)).model, x[indices], ["Grad-CAM"], log=lambda *_: None)
    for method in again:
        for layer in sanity.LAYERS:
            for measure in ("spearman", "ssim"):
                np.testing.assert_allclose(np.array(again[method][layer][measure]),
                                           np.array(stored["methods"][method][layer][measure]), atol=2e-4)
    card = (bundled / "README.md").read_text()
    assert sanity.CARD_HEADING in card and (bundled / "randomization.png").is_file()


def test_the_command_writes_the_table_into_the_run_and_keeps_earlier_rows(tiny_run, tiny_data_dir, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    sanity.main([str(run), "--data-dir", str(tiny_data_dir), "--methods", "Grad-CAM"])
    sanity.main([str(run), "--data-dir", str(tiny_data_dir), "--methods", sanity.SOBEL])
    table = json.loads((run / "metrics.json").read_text())["randomization"]
    assert set(table["methods"]) == {"Grad-CAM", sanity.SOBEL} and len(table["test_indices"]) == 32
    assert "test_accuracy" in json.loads((run / "metrics.json").read_text())  # the rest of metrics.json kept
    card = (run / "README.md").read_text()
    assert card.count(sanity.CARD_HEADING) == 1 and "| Grad-CAM++ | not computed |" in card
    assert card.index(sanity.CARD_HEADING) < card.index("## Files") and (run / "randomization.png").is_file()
