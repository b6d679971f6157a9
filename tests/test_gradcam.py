import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import pytorch_grad_cam as reference_cams
from pytorch_grad_cam.utils.model_targets import ClassifierOutputReST, ClassifierOutputTarget
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection_with_sign_correction

from cifar.engine.explainer import LAYERS
from cifar.engine.cam import (FEM, METHODS, AblationCAM, EigenCAM, EigenGradCAM, FinerCAM, FullGrad, GradCAM,
                              GradCAMElementWise, GradCAMPlusPlus, HiResCAM, KPCACAM, LayerCAM, RefineCAM, ScoreCAM,
                              SESS, SegEigenCAM, ShapleyCAM, XGradCAM)
from cifar.engine.pictures import overlay
from cifar.engine.model import ResNet18

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = ResNet18().eval()
    # A few steps of training so the activations and gradients are not those of a random init.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    images, labels = torch.rand(32, 3, 32, 32), torch.arange(32) % 10
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    model.zero_grad(set_to_none=True)
    return model.eval()


def hook_count(model):
    return sum(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.fixture(scope="module")
def bundled():
    """The shipped model and the ten example pictures (one per class) as its inputs."""
    from cifar.engine.predict import image_tensor
    from cifar.engine.pictures import load_image, prepare
    from cifar.runs.folder import load_run

    model = load_run(str(ROOT / "checkpoints" / "resnet18-cifar10")).model
    paths = sorted((ROOT / "examples").glob("*.png"))
    return model, image_tensor(np.stack([prepare(load_image(str(path)))[0] for path in paths]))


class ReferenceEigenCAMSignCorrected(reference_cams.EigenCAM):
    """The reference's Eigen-CAM with its own sign-corrected projection (its plain one keeps whatever sign
    the SVD returns, so a map and its negative would both be 'right')."""

    def get_cam_image(self, input_tensor, target_layer, targets, activations, grads, eigen_smooth):
        return get_2d_projection_with_sign_correction(activations)


class ReferenceEigenGradCAMSignCorrected(reference_cams.EigenGradCAM):
    """The same for Eigen-Grad-CAM (its projection of gradient x activation)."""

    def get_cam_image(self, input_tensor, target_layer, targets, activations, grads, eigen_smooth):
        return get_2d_projection_with_sign_correction(grads * activations)


# (ours, the reference, the reference's target for a class): each method explains what the reference's target says.
PAIRS = [(GradCAM, reference_cams.GradCAM, ClassifierOutputTarget),
         (GradCAMPlusPlus, reference_cams.GradCAMPlusPlus, ClassifierOutputTarget),
         (HiResCAM, reference_cams.HiResCAM, ClassifierOutputTarget),
         (XGradCAM, reference_cams.XGradCAM, ClassifierOutputTarget),
         (LayerCAM, reference_cams.LayerCAM, ClassifierOutputTarget),
         (EigenCAM, ReferenceEigenCAMSignCorrected, ClassifierOutputTarget),
         (GradCAMElementWise, reference_cams.GradCAMElementWise, ClassifierOutputTarget),
         (EigenGradCAM, ReferenceEigenGradCAMSignCorrected, ClassifierOutputTarget),
         (SegEigenCAM, reference_cams.SegEigenCAM, ClassifierOutputTarget),  # sign-corrected by the reference itself
         (ShapleyCAM, reference_cams.ShapleyCAM, ClassifierOutputReST),  # the paper's target, without which it is Grad-CAM
         (FEM, reference_cams.FEM, ClassifierOutputTarget),
         (KPCACAM, reference_cams.KPCA_CAM, ClassifierOutputTarget)]


@pytest.mark.parametrize("ours, reference, target", PAIRS, ids=[ours.__name__ for ours, _, _ in PAIRS])
@pytest.mark.parametrize("layer", LAYERS)
def test_matches_pytorch_grad_cam_on_the_bundled_model(bundled, ours, reference, target, layer):
    model, images = bundled
    with torch.no_grad():
        ranked = model(images).argsort(1, descending=True)
    module = dict(model.named_modules())[layer]
    compared, maps = 0, 0
    # The predicted class, the runner-up and the least likely one: each image asks for different maps.
    for targets in (ranked[:, 0], ranked[:, 1], ranked[:, -1]):
        mine = ours(model, layer)(images, targets.tolist())[0][:, 0]
        with reference(model=model, target_layers=[module]) as cam:
            theirs = cam(input_tensor=images, targets=[target(int(t)) for t in targets])
        compared += count_equal_maps(mine, theirs)
        maps += len(mine)
    # Blank maps agree trivially; enough real ones must be compared for the test to mean something (the
    # fewest: Grad-CAM++ at the pre-BatchNorm layer4.1.conv2, 9 of 30).
    assert compared >= maps // 6


def test_every_method_offered_is_compared_with_the_reference_here():
    compared = {ours for ours, _, _ in PAIRS} | {ScoreCAM, FinerCAM, RefineCAM, AblationCAM, FullGrad, SESS}
    assert set(METHODS.values()) == compared


def test_shapley_cams_second_order_term_is_what_the_reference_adds(bundled):
    """Without the Hessian-vector term (Grad-CAM of the same ReST score) the maps are off the reference's by up to 0.08
    at layer1 (correlation alone might not show it); with it, ours are the reference's within 1e-4."""
    model, images = bundled

    class GradCAMOfReST(GradCAM):
        score = ShapleyCAM.score

    with torch.no_grad():
        predicted = model(images).argmax(1).tolist()
    theirs = reference_cams.ShapleyCAM(model=model, target_layers=[model.layer1])(
        images, [ClassifierOutputReST(t) for t in predicted])
    assert np.abs(ShapleyCAM(model, "layer1")(images, predicted)[0][:, 0] - theirs).max() < 1e-4
    assert np.abs(GradCAMOfReST(model, "layer1")(images, predicted)[0][:, 0] - theirs).max() > 0.05


@pytest.mark.parametrize("layer", LAYERS)
def test_finer_cam_matches_pytorch_grad_cam_with_its_comparison_classes(bundled, layer):
    """The reference picks the three classes whose logits are nearest the target's, for the predicted class and for
    the runner-up (its target_idx), one image at a time."""
    model, images = bundled
    with torch.no_grad():
        ranked = model(images).argsort(1, descending=True)
    reference = reference_cams.FinerCAM(model=model, target_layers=[dict(model.named_modules())[layer]])
    compared = 0
    for rank in (0, 1):
        mine = FinerCAM(model, layer)(images, ranked[:, rank].tolist())[0][:, 0]
        theirs = np.concatenate([reference(input_tensor=images[i:i + 1], target_idx=int(ranked[i, rank]))
                                 for i in range(len(images))])
        compared += count_equal_maps(mine, theirs)
    assert compared >= 8


@pytest.mark.parametrize("layer", LAYERS)
def test_refine_cam_matches_pytorch_grad_cam_fusing_the_layer_with_the_stages_after_it(bundled, layer):
    model, images = bundled
    ours = RefineCAM(model, layer)
    fused = ours.fused_with(layer)
    assert fused[0] == layer and fused[-1] == "layer4" and len(fused) == {"layer1": 4, "layer2": 3, "layer3": 2}.get(layer, 1 + (layer != "layer4"))
    with torch.no_grad():
        predicted = model(images).argmax(1).tolist()
    mine = ours(images, predicted)[0][:, 0]
    modules = dict(model.named_modules())
    theirs = reference_cams.RefineCAM(model=model, target_layers=[modules[name] for name in fused])(
        images, [ClassifierOutputTarget(t) for t in predicted])
    assert count_equal_maps(mine, theirs) >= 1


def test_full_grad_matches_pytorch_grad_cam_and_is_the_same_at_every_layer(bundled):
    model, images = bundled
    with torch.no_grad():
        runner_up = model(images).argsort(1, descending=True)[:, 1].tolist()
    mine = FullGrad(model, LAYERS)(images, runner_up)[0]
    np.testing.assert_array_equal(mine[:, 0], mine[:, -1])
    theirs = reference_cams.FullGrad(model=model, target_layers=[])(images, [ClassifierOutputTarget(t) for t in runner_up])
    assert count_equal_maps(mine[:, 0], theirs) == len(images)
    # The 20 BatchNorms' evidence outweighs the input's: correlation alone would not see the input's part missing.
    assert np.abs(mine[:, 0] - theirs).max() < 1e-4


@pytest.mark.parametrize("layer", LAYERS)
def test_ablation_cam_matches_pytorch_grad_cam_on_the_bundled_model(bundled, layer):
    """One image a layer (a forward pass per channel, as Score-CAM): a car for its predicted class, or a dog for its
    runner-up. At layer4.1.conv2, whose outputs go negative, the reference's removed value drifts within a batch of
    copies (each copy's min - 1e7 sees the copies before it): one copy a batch there, its per-channel value, ours."""
    model, images = bundled
    index, rank = [(5, 1), (1, 0)][LAYERS.index(layer) % 2]
    image = images[[index]]
    with torch.no_grad():
        target = int(model(image).argsort(1, descending=True)[0, rank])
    mine = AblationCAM(model, layer)(image, target)[0][:, 0]
    reference = reference_cams.AblationCAM(model=model, target_layers=[dict(model.named_modules())[layer]],
                                           batch_size=1 if layer == "layer4.1.conv2" else AblationCAM.batch_size)
    theirs = reference(input_tensor=image, targets=[ClassifierOutputTarget(target)])
    assert count_equal_maps(mine, theirs) >= 1


def count_equal_maps(mine, theirs) -> int:
    """Asserts each pair of maps is the same (correlation >= 0.99, or both blank); returns how many were
    not blank."""
    compared = 0
    for a, b in zip(mine, theirs):
        if b.std() < 1e-6:  # no positive evidence at all: both must say so
            assert a.std() < 1e-6
        else:
            assert np.corrcoef(a.ravel(), b.ravel())[0, 1] >= 0.99
            compared += 1
    return compared


@pytest.mark.parametrize("layer", LAYERS)
def test_score_cam_matches_pytorch_grad_cam_on_the_bundled_model(bundled, layer):
    """Two images (not ten: each map is one forward pass per channel, ~5 s at layer4), one asking for its
    predicted class and one for its runner-up; at layer4.1.conv2, where both implementations give blank maps, the
    first alone."""
    model, images = bundled
    images = images[[1, 5]] if layer != "layer4.1.conv2" else images[[1]]  # a car and a dog
    with torch.no_grad():
        ranked = model(images).argsort(1, descending=True)
    targets = [int(ranked[0, 0]), int(ranked[-1, 1])][:len(images)]
    mine = ScoreCAM(model, layer)(images, targets)[0][:, 0]
    reference = reference_cams.ScoreCAM(model=model, target_layers=[dict(model.named_modules())[layer]])
    reference.batch_size = ScoreCAM.batch_size
    theirs = reference(input_tensor=images, targets=[ClassifierOutputTarget(t) for t in targets])
    compared = count_equal_maps(mine, theirs)
    # Score-CAM's weights are a softmax, all positive: at the pre-BatchNorm layer4.1.conv2, whose outputs
    # are mostly negative, both implementations give blank maps.
    assert compared == (0 if layer == "layer4.1.conv2" else 2)


def test_eigen_cam_needs_no_gradients_and_ignores_the_class(bundled):
    model, images = bundled
    backward_calls = []
    handle = model.layer4.register_full_backward_hook(lambda *args: backward_calls.append(1))
    try:
        maps = [EigenCAM(model, "layer4")(images[:2], target)[0] for target in (0, 9)]
    finally:
        handle.remove()
    assert backward_calls == [] and maps[0].max() == pytest.approx(1, abs=1e-3)
    np.testing.assert_array_equal(*maps)


def test_heatmaps_are_input_sized_and_scaled(model):
    cams, logits = GradCAM(model, "layer2")(torch.rand(3, 3, 32, 32))
    assert cams.shape == (3, 1, 32, 32) and cams.dtype == np.float32
    peaks = cams.max((2, 3)).ravel()
    assert cams.min() >= 0 and peaks.max() == pytest.approx(1, abs=1e-3)
    assert all(peak == pytest.approx(1, abs=1e-3) or peak == 0 for peak in peaks)  # 0: no positive evidence
    assert logits.shape == (3, 10)


def test_target_class_changes_the_heatmap(model):
    image = torch.rand(1, 3, 32, 32)
    cam = GradCAM(model, "layer3")
    assert not np.allclose(cam(image, 0)[0], cam(image, 7)[0])


def test_default_target_is_the_predicted_class(model):
    image = torch.rand(1, 3, 32, 32)
    cam = GradCAM(model, "layer3")
    predicted = int(model(image).argmax())
    np.testing.assert_allclose(cam(image)[0], cam(image, predicted)[0], atol=1e-6)


def test_no_hooks_left_after_success_or_error(model):
    model.zero_grad(set_to_none=True)  # the reference implementation's backward() fills them
    before = hook_count(model)
    GradCAM(model, "layer4")(torch.rand(1, 3, 32, 32))
    with pytest.raises(RuntimeError):
        GradCAM(model, "layer4")(torch.rand(1, 4, 32, 32))  # 4 channels: the forward pass raises
    assert hook_count(model) == before
    assert all(p.grad is None for p in model.parameters())  # gradients go to the activation only


def test_unknown_layer_is_a_clear_error(model):
    with pytest.raises(ValueError, match="unknown layer 'layer9'"):
        GradCAM(model, "layer9")


def test_concurrent_requests_get_their_own_heatmaps(model):
    torch.manual_seed(2)
    images = [torch.rand(1, 3, 32, 32) for _ in range(6)]
    expected = [GradCAM(model, "layer3")(image, 1)[0] for image in images]
    results = {}

    def work(i):
        for _ in range(3):
            results[i] = GradCAM(model, "layer3")(images[i], 1)[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, cam in enumerate(expected):
        np.testing.assert_allclose(results[i], cam, atol=1e-5)
    assert hook_count(model) == 0


def test_overlay_opacity_is_the_heatmaps_weight():
    image = np.full((64, 64, 3), 100, np.uint8)
    cam = np.zeros((8, 8), np.float32)
    np.testing.assert_array_equal(overlay(image, cam, 0.0), image)
    only_heat = overlay(image, cam, 1.0)
    assert only_heat.shape == image.shape
    assert tuple(only_heat[0, 0]) == (0, 0, 128)  # JET at 0 is dark blue
    with pytest.raises(ValueError):
        overlay(image, cam, 1.5)


def test_several_layers_in_one_pass_equal_one_layer_at_a_time(model):
    layers = ("layer4.1.conv2", "layer1", "layer2", "layer3", "layer4")
    images = torch.rand(2, 3, 32, 32)
    for method in (GradCAM, GradCAMPlusPlus):
        together, _ = method(model, layers)(images, 3)
        assert together.shape == (2, len(layers), 32, 32)
        for i, layer in enumerate(layers):
            np.testing.assert_allclose(together[:, i], method(model, layer)(images, 3)[0][:, 0], atol=1e-5)


@pytest.mark.parametrize("ours, reference, _", PAIRS[:4], ids=[ours.__name__ for ours, _, _ in PAIRS[:4]])
def test_why_a_not_b_matches_the_reference_with_a_logit_difference_target(bundled, ours, reference, _):
    """The contrast map explains the predicted logit minus the runner-up's: the reference given that target."""
    model, images = bundled
    with torch.no_grad():
        ranked = model(images).argsort(1, descending=True)
    predicted, runner_up = ranked[:, 0].tolist(), ranked[:, 1].tolist()
    mine = ours(model, "layer4")(images, predicted, runner_up)[0][:, 0]
    targets = [lambda output, a=a, b=b: output[..., a] - output[..., b] for a, b in zip(predicted, runner_up)]
    with reference(model=model, target_layers=[model.layer4]) as cam:
        theirs = cam(input_tensor=images, targets=targets)
    assert count_equal_maps(mine, theirs) >= 5
    plain = ours(model, "layer4")(images, predicted)[0][:, 0]
    assert max(np.abs(a - b).max() for a, b in zip(mine, plain)) > 0.1  # the contrast is not the plain map


def test_the_edge_baseline_is_the_sobel_magnitude_of_the_grey_image_whatever_the_model():
    """scipy's Sobel filter (its `nearest` border is our replicate padding), on two models: the same map."""
    from scipy import ndimage

    from cifar.engine.cam import SobelCAM

    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    grey = images.mean(1).numpy().astype(np.float64)
    expected = np.stack([np.hypot(*(ndimage.sobel(g, axis=axis, mode="nearest") for axis in (1, 0))) for g in grey])
    expected = (expected - expected.min((1, 2), keepdims=True)) / np.ptp(expected, (1, 2), keepdims=True)
    maps = [SobelCAM(model.eval(), "layer4")(images)[0][:, 0] for model in (ResNet18(), ResNet18())]
    np.testing.assert_allclose(maps[0], expected, atol=1e-5)
    np.testing.assert_array_equal(*maps)


def test_the_centre_baseline_is_one_centred_blob_for_every_image():
    from cifar.engine.cam import CentreCAM

    maps = CentreCAM(ResNet18().eval(), "layer2")(torch.rand(2, 3, 32, 32))[0][:, 0]
    np.testing.assert_array_equal(maps[0], maps[1])
    np.testing.assert_allclose(maps[0], maps[0][::-1], atol=1e-6)  # symmetric about the centre, both ways
    np.testing.assert_allclose(maps[0], maps[0][:, ::-1], atol=1e-6)
    assert maps[0][15:17, 15:17].min() == pytest.approx(1) and maps[0][0, 0] < 0.05


def test_score_cam_weighs_channels_that_are_constant_but_not_zero_as_the_reference_does():
    """A channel whose activation is the same everywhere masks the image black: its score is the black image's logit,
    computed once for all such channels. At the stage outputs (after ReLU) those channels are zero and their scores
    change only the softmax's scale, which the map's normalisation removes; a channel constant at another value shifts
    the weighted sum, and so what the final ReLU keeps: there its score shows."""

    class ConstantChannels(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.features = torch.nn.Conv2d(3, 8, 3, padding=1)
            with torch.no_grad():  # three channels see nothing of the image: constant at -0.3 (the others raised, so
                self.features.weight[:3] = 0  # that the weighted sum is positive in most places, not all)
                self.features.bias[:3] = -0.3
                self.features.bias[3:] += 0.5
            self.fc = torch.nn.Linear(8, 10)

        def forward(self, x):
            return self.fc(self.features(x).relu().mean((2, 3)))

    model = ConstantChannels().eval()
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    targets = [3, 7]
    mine = ScoreCAM(model, "features")(images, targets)[0][:, 0]
    theirs = reference_cams.ScoreCAM(model=model, target_layers=[model.features])(
        input_tensor=images, targets=[ClassifierOutputTarget(t) for t in targets])
    assert 0.9 < (theirs > 0).mean() < 1  # the ReLU keeps most of the map, not all of it
    np.testing.assert_allclose(mine, theirs, atol=1e-4)  # scoring those channels 0 instead moves it by 0.09


def test_a_methods_blurred_control_is_its_own_map_gaussian_blurred(model):
    """scipy's Gaussian filter (its `mirror` border is our reflect padding; radius 3 sigma), scaled to [0, 1] again."""
    from scipy import ndimage

    from cifar.engine.cam import blurred
    from cifar.engine.cam.baselines import BLUR_SIGMA

    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    sharp = GradCAM(model, "layer1")(images, 3)[0][:, 0].astype(np.float64)
    expected = np.stack([ndimage.gaussian_filter(m, BLUR_SIGMA, mode="mirror", truncate=3.0) for m in sharp])
    expected = (expected - expected.min((1, 2), keepdims=True)) / np.ptp(expected, (1, 2), keepdims=True)
    ours = blurred(GradCAM)(model, "layer1")(images, 3)[0][:, 0]
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    assert np.abs(ours - sharp).max() > 0.1


@pytest.mark.parametrize("layer", ["layer1", "layer4"])
def test_sess_matches_pytorch_grad_cam_fusing_grad_cam_over_its_windows(bundled, layer):
    """One picture a layer (about 120 windows, each explained by Grad-CAM, whose every layer is compared above): the
    finest stage and the last; a car for its predicted class at layer1, a cat for its runner-up at layer4."""
    model, images = bundled
    index, rank = (1, 0) if layer == "layer1" else (3, 1)
    image = images[[index]]
    with torch.no_grad():
        target = int(model(image).argsort(1, descending=True)[0, rank])
    mine = SESS(model, layer)(image, target)[0][:, 0]
    theirs = reference_cams.SESS(model=model, target_layers=[dict(model.named_modules())[layer]])(
        image, [ClassifierOutputTarget(target)])
    assert count_equal_maps(mine, theirs) == 1 and np.abs(mine - theirs).max() < 0.01


def test_the_methods_that_equal_others_on_our_layers_do_so_by_definition(model):
    """docs/methods.md: after a ReLU, Grad-CAM element-wise is LayerCAM; at layer4 (before global average pooling)
    HiResCAM is Grad-CAM; RefineCAM at layer4 is Grad-CAM++. Before a BatchNorm the first two differ."""
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    pairs = [(GradCAMElementWise, LayerCAM, "layer3"), (HiResCAM, GradCAM, "layer4"), (RefineCAM, GradCAMPlusPlus, "layer4")]
    for ours, same, layer in pairs:
        np.testing.assert_allclose(ours(model, layer)(images, 2)[0], same(model, layer)(images, 2)[0], atol=1e-5)
    assert not np.allclose(*(method(model, "layer4.1.conv2")(images, 2)[0] for method in (GradCAMElementWise, LayerCAM)),
                           atol=1e-3)
