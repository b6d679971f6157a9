import numpy as np
import pytest
import torch

from cifar.engine.predict import TTA_MODES, predict_arrays, tta_logits, view_logits
from cifar.training.evaluate import accuracy_by_tta
from cifar.engine.model import ResNet18


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ResNet18().eval()


def test_tta_views_are_the_image_its_mirror_and_their_shifts(model):
    images = torch.rand(3, 3, 32, 32)
    views = view_logits(model, images, "flip_translate")
    # Built independently of view_logits: numpy reflect padding, then the two diagonal 2-pixel shifts.
    padded = torch.from_numpy(np.pad(images.numpy(), ((0, 0), (0, 0), (2, 2), (2, 2)), mode="reflect"))
    mirrored = images.flip(3)
    padded_mirror = torch.from_numpy(np.pad(mirrored.numpy(), ((0, 0), (0, 0), (2, 2), (2, 2)), mode="reflect"))
    expected = [images, mirrored, padded[..., :32, :32], padded_mirror[..., :32, :32],
                padded[..., 4:, 4:], padded_mirror[..., 4:, 4:]]
    with torch.no_grad():
        for view, inputs in zip(views, expected):
            torch.testing.assert_close(view, model(inputs), atol=1e-4, rtol=1e-4)
    assert [len(view_logits(model, images, tta)) for tta in TTA_MODES] == [1, 2, 6]


def test_predict_arrays_gives_every_view_and_tta_is_their_mean(model):
    x = np.random.default_rng(0).integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    views = predict_arrays(model, x, "flip", batch_size=4)
    assert views.shape == (2, 7, 10)
    inputs = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255
    np.testing.assert_allclose(views.mean(0), tta_logits(model, inputs, "flip").numpy(), atol=1e-4)


def test_accuracy_by_tta_scores_each_mode_as_predicting_with_it(model):
    x = np.random.default_rng(1).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    inputs = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255
    predicted = {tta: tta_logits(model, inputs, tta).argmax(1).numpy() for tta in TTA_MODES}
    y = predicted["flip"]  # labels that flip TTA gets all right, the other modes not necessarily
    accuracy = accuracy_by_tta(predict_arrays(model, x, "flip_translate"), y)
    assert accuracy["flip"] == 1.0
    for tta in TTA_MODES:
        assert accuracy[tta] == pytest.approx((predicted[tta] == y).mean())


def test_unknown_tta_mode_is_refused(model):
    with pytest.raises(ValueError, match="tta must be one of"):
        view_logits(model, torch.rand(1, 3, 32, 32), "rotate")
