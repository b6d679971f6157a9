"""The faithfulness metrics beside ROAD (cifar/engine/metrics.py), each against the library that defines it, on the
bundled model's heatmaps of the ten example pictures."""

from contextlib import nullcontext
from functools import partial

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM as ReferenceGradCAM
from pytorch_grad_cam.metrics.arcc import ARCC
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget
from torchcam.metrics import ClassificationMetric, DeletionInsertionMetric

from cifar.engine.cam import GradCAM, LayerCAM
from cifar.engine.faithfulness import PERCENTILES, SEED, road
from cifar.engine.metrics import arcc, coherency, complexity, confidence_change, deletion_insertion
from tests.test_faithfulness import bundled  # noqa: F401 (the fixture)


class GivenMaps:
    """A torch-cam CAM extractor that answers with maps computed beforehand: the metric is compared, not the method."""

    def __init__(self, model, cams):
        self.model, self.cams = model, torch.as_tensor(cams)

    def __call__(self, class_idx=None, scores=None, normalized=True, **kwargs):
        return [self.cams]

    def fuse_cams(self, cams):
        return cams[0]

    def _hooks_off(self):
        return nullcontext()


@pytest.fixture(scope="module")
def heatmaps(bundled):
    """Grad-CAM at layer4 and LayerCAM at layer2 (a coarse map and a fine one) for each picture's predicted class."""
    model, images = bundled
    maps = [method(model, layer)(images) for method, layer in ((GradCAM, "layer4"), (LayerCAM, "layer2"))]
    return [(cams[:, 0], logits.argmax(1)) for cams, logits in maps]


def test_confidence_change_equals_torch_cams_and_pytorch_grad_cams(bundled, heatmaps):
    model, images = bundled
    for cams, targets in heatmaps:
        ours = confidence_change(model, images, cams, targets)
        reference = CamMultImageConfidenceChange()(images, cams, [ClassifierOutputSoftmaxTarget(int(t)) for t in targets],
                                                   model)
        np.testing.assert_allclose(ours.after - ours.before, reference, atol=1e-5)
        torchcam = ClassificationMetric(GivenMaps(model, cams), partial(torch.softmax, dim=-1))
        torchcam.update(images, targets.tolist())
        summary = torchcam.summary()
        assert ours.drop.mean() == pytest.approx(summary["avg_drop"], abs=1e-5)
        assert ours.increase.mean() == pytest.approx(summary["conf_increase"], abs=1e-9)
        assert np.ptp(ours.drop) > 0.05  # the pictures differ: not a comparison of constants


def test_deletion_and_insertion_equal_torch_cams(bundled, heatmaps):
    model, images = bundled
    for cams, targets in heatmaps:
        ours = deletion_insertion(model, images, cams, targets)
        for i in range(0, len(images), 3):  # one picture at a time: torch-cam keeps only the batch's mean
            torchcam = DeletionInsertionMetric(GivenMaps(model, cams[i:i + 1]), partial(torch.softmax, dim=-1))
            torchcam.update(images[i:i + 1], [int(targets[i])])
            summary = torchcam.summary()
            assert ours.deletion[i] == pytest.approx(summary["deletion_auc"], abs=1e-5)
            assert ours.insertion[i] == pytest.approx(summary["insertion_auc"], abs=1e-5)
        assert np.ptp(ours.deletion) > 0.05 and np.ptp(ours.insertion) > 0.05


def test_the_models_own_evidence_deletes_faster_and_inserts_faster_than_its_inverse(bundled, heatmaps):
    model, images = bundled
    cams, targets = heatmaps[0]
    faithful, inverse = (deletion_insertion(model, images, maps, targets) for maps in (cams, 1 - cams))
    assert faithful.deletion.mean() < inverse.deletion.mean() and faithful.insertion.mean() > inverse.insertion.mean()


def test_arcc_equals_pytorch_grad_cams(bundled):
    """The reference's ARCC with its Grad-CAM as the method, one picture at a time (its ROAD's noise seeded as ours).
    Our methods explain the logit, so the coherency's second map does too: the reference would hand the method ROAD's
    softmax target (its map of the probability), so its coherency is handed the logit's target here."""
    model, images = bundled
    cams, logits = GradCAM(model, "layer4")(images)
    cams, targets = cams[:, 0], logits.argmax(1)
    masked_cams = GradCAM(model, "layer4")(images * torch.as_tensor(cams)[:, None], targets.tolist())[0][:, 0]
    ours = arcc(coherency(cams, masked_cams), complexity(cams), road(model, images, cams, targets).score)
    theirs = []
    for i in range(len(images)):
        torch.manual_seed(SEED)
        metric = ARCC(ReferenceGradCAM(model=model, target_layers=[model.layer4]), road_percentiles=list(PERCENTILES))
        of_logits = [ClassifierOutputTarget(int(targets[i]))]
        metric.coherency = partial(lambda coherency_, tensor, maps, _, *rest: coherency_(tensor, maps, of_logits, *rest),
                                   metric.coherency)
        theirs.append(metric(images[i:i + 1], cams[i:i + 1], [ClassifierOutputSoftmaxTarget(int(targets[i]))], model)[0])
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert np.ptp(ours) > 0.05
