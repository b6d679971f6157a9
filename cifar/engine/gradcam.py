"""Class activation maps, our own implementation (the original project's point): Grad-CAM, Grad-CAM++,
HiResCAM, XGrad-CAM, LayerCAM, Score-CAM and Eigen-CAM.

Like pytorch-grad-cam: `BaseCAM` owns the hooks on the target layers and their cleanup (a context
manager, so no hook outlives a call, even one that raises), and each method only says how it weights
the activation channels (`weights`) or, where it is not a weighting, how it makes the map (`cam`).
Gradient-free methods (Score-CAM, Eigen-CAM) set `uses_gradients = False`: the same forward hooks, no
backward pass. Every method is handed what pytorch-grad-cam hands its own: the images, the target classes,
the activations and the gradients; most use only the last two.

Safe under concurrent requests on one shared model: the hook records activations only for the
thread that registered it, and gradients are taken with `torch.autograd.grad` with respect to those
activations, so no `.grad` on the shared parameters is ever written.
"""

import threading
from collections.abc import Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F


class BaseCAM:
    """target_layers: one layer name, or several: their heatmaps all come from one forward and one
    backward pass (the app's strip across the four stages costs about one heatmap, not four)."""

    uses_gradients = True
    # What a heatmap costs: False, one forward (and backward) pass for any number of layers; True, one forward pass per
    # channel of each layer (Score-CAM: 512 at layer4). The page limits the costly ones and asks a GPU for longer.
    pass_per_channel = False
    # For a method whose map does not depend on the class asked for: why (the page says so). None: it does depend.
    ignores_class = None

    def __init__(self, model: torch.nn.Module, target_layers: str | Sequence[str]):
        modules = dict(model.named_modules())
        self.target_layers = (target_layers,) if isinstance(target_layers, str) else tuple(target_layers)
        for name in self.target_layers:
            if name not in modules or not name:
                raise ValueError(f"unknown layer {name!r}: the model has no module of that name")
        self.model, self.layers = model, [modules[name] for name in self.target_layers]

    def weights(self, images, targets, activations, gradients) -> torch.Tensor:
        """(N, 3, H, W) images, (N, classes) targets (the score explained is targets . logits: a one-hot row
        for a class), (N, C, h, w) activations and gradients (None without gradients) -> (N, C) weights."""
        raise NotImplementedError

    def cam(self, images, targets, activations, gradients) -> torch.Tensor:
        """The (N, h, w) map before ReLU and scaling: by default the channels weighted by `weights`."""
        weights = self.weights(images, targets, activations, gradients)  # (N, C)
        return (weights[:, :, None, None] * activations).sum(1)

    @contextmanager
    def _capture(self):
        captured, owner = {}, threading.get_ident()

        def hook_for(name):
            def hook(module, inputs, output):
                if threading.get_ident() == owner:
                    captured[name] = output
            return hook

        handles = [layer.register_forward_hook(hook_for(name)) for name, layer in zip(self.target_layers, self.layers)]
        try:
            yield captured
        finally:
            for handle in handles:
                handle.remove()

    def __call__(self, images: torch.Tensor, target_classes=None, contrast_classes=None):
        """Heatmaps for float [0, 1] images (N, 3, H, W), computed on the model's device.

        target_classes: None (each image's predicted class), an int, or one int per image.
        contrast_classes: None, an int or one per image: the map then explains the target's logit minus the
        contrast's, what makes the model prefer the target to it ("why A and not B").
        Returns (cams, logits): cams (N, layers, H, W) float32 in [0, 1] at the input size, in the
        order of target_layers, on the CPU; logits (N, classes) on the model's device.
        """
        self.model.eval()
        images = images.to(next(self.model.parameters()).device)
        with self._capture() as captured, torch.set_grad_enabled(self.uses_gradients):
            logits = self.model(images)
            missing = [name for name in self.target_layers if name not in captured]
            if missing:
                raise RuntimeError(f"layer {missing[0]!r} did not run in the forward pass")
            activations = [captured[name] for name in self.target_layers]
            targets = self._targets(logits, target_classes, contrast_classes)  # (N, classes)
            if self.uses_gradients:
                gradients = torch.autograd.grad((targets * logits).sum(), activations)
            else:
                gradients = [None] * len(activations)
        # The hooks are gone: a method that runs the model again here (Score-CAM) records nothing.
        with torch.no_grad():
            cams = torch.stack([self._heatmaps(images, targets, a.detach(), g) for a, g in zip(activations, gradients)], 1)
        return cams.float().cpu().numpy(), logits.detach()

    @staticmethod
    def _targets(logits, target_classes, contrast_classes) -> torch.Tensor:
        """(N, classes) weights of the logits in the score to explain: +1 the target, -1 the contrast."""
        def one_hot(classes):
            classes = torch.as_tensor(classes, device=logits.device).expand(len(logits))
            return F.one_hot(classes, logits.shape[1]).to(logits.dtype)

        targets = one_hot(logits.argmax(1) if target_classes is None else target_classes)
        return targets if contrast_classes is None else targets - one_hot(contrast_classes)

    def _heatmaps(self, images, targets, activations, gradients) -> torch.Tensor:
        """(N, H, W) heatmaps of one layer at the input size, each scaled to [0, 1]."""
        cams = F.relu(self.cam(images, targets, activations, gradients))[:, None]  # (N, 1, h, w)
        cams = F.interpolate(cams, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]  # (N, H, W)
        low = cams.amin((1, 2), keepdim=True)
        return (cams - low) / (cams.amax((1, 2), keepdim=True) - low).clamp_min(1e-12)


class GradCAM(BaseCAM):
    """Selvaraju et al. 2017: channel weight = mean gradient over the spatial positions."""

    def weights(self, images, targets, activations, gradients):
        return gradients.mean((2, 3))


class GradCAMPlusPlus(BaseCAM):
    """Chattopadhay et al. 2018: per-position weights from 2nd/3rd-order gradient terms, so several
    instances of a class all light up instead of the most salient one alone."""

    def weights(self, images, targets, activations, gradients):
        grads2 = gradients.pow(2)
        grads3 = grads2 * gradients
        sum_activations = activations.sum((2, 3), keepdim=True)
        alpha = grads2 / (2 * grads2 + sum_activations * grads3 + 1e-6)
        alpha = torch.where(gradients != 0, alpha, torch.zeros_like(alpha))
        return (F.relu(gradients) * alpha).sum((2, 3))


class HiResCAM(BaseCAM):
    """Draelos & Carin 2020: gradient times activation at each position, summed over channels, so the map
    shows exactly where the score rises (Grad-CAM averages the gradient over positions first)."""

    def cam(self, images, targets, activations, gradients):
        return (gradients * activations).sum(1)


class XGradCAM(BaseCAM):
    """Fu et al. 2020: each channel's gradients averaged with its own activations as weights."""

    def weights(self, images, targets, activations, gradients):
        return (gradients * activations).sum((2, 3)) / (activations.sum((2, 3)) + 1e-7)


class LayerCAM(BaseCAM):
    """Jiang et al. 2021: each position of each channel weighted by its own positive gradient, which keeps
    the finer detail of early layers."""

    def cam(self, images, targets, activations, gradients):
        return (F.relu(gradients) * activations).sum(1)


class ScoreCAM(BaseCAM):
    """Wang et al. 2020: no gradients; each channel, upsampled and scaled to [0, 1], masks the image, and the
    channel's weight is the softmax over channels of the target class's logit for its masked image. One
    forward pass per channel (512 at layer4), batched; a channel silent everywhere masks the whole image
    black, so all such channels share one pass (at layer4 that is 5 to 40% of them)."""

    uses_gradients = False
    pass_per_channel = True
    batch_size = 32  # masked images per forward pass: on a 2-core CPU, 1.4x as many images/s as in batches of 128

    def weights(self, images, targets, activations, gradients):
        # UpsamplingBilinear2d, as the reference: corners aligned (not the heatmaps' own resize).
        masks = F.interpolate(activations, size=images.shape[-2:], mode="bilinear", align_corners=True)  # (N, C, H, W)
        low, high = masks.amin((2, 3), keepdim=True), masks.amax((2, 3), keepdim=True)
        masks = (masks - low) / (high - low + 1e-8)
        silent = (high == low)[:, :, 0, 0]  # (N, C)
        # The model with BatchNorm folded into its convolutions, where it offers one (our ResNet18.fused): on this 2-core
        # CPU the heatmap at layer4 takes 0.9x the time (BENCHMARKS.md).
        model = self.model.fused() if hasattr(self.model, "fused") else self.model
        black_logits = model(torch.zeros_like(images[:1]))[0]  # (classes,)
        scores = (targets @ black_logits)[:, None].expand(silent.shape).clone()  # (N, C)
        for n, (image, target) in enumerate(zip(images, targets)):
            channels = (~silent[n]).nonzero()[:, 0]
            for batch in channels.split(self.batch_size):
                masked = (image[None] * masks[n, batch, None]).contiguous(memory_format=torch.channels_last)
                scores[n, batch] = model(masked) @ target  # masked: (B, 3, H, W)
        return scores.softmax(1)


class EigenCAM(BaseCAM):
    """Muhammad & Yeasin 2020: the activations' first principal component. No gradients, so it ignores
    the target class. An SVD's sign is arbitrary: the sign that makes the larger extreme positive is
    kept (as pytorch-grad-cam's get_2d_projection_with_sign_correction)."""

    uses_gradients = False
    ignores_class = "the main pattern of the layer's activations, no gradients"

    def cam(self, images, targets, activations, gradients):
        positions = activations.flatten(2).transpose(1, 2)  # (N, h*w, C)
        centered = positions - positions.mean(1, keepdim=True)
        first_component = torch.linalg.svd(centered, full_matrices=False).Vh[:, 0]  # (N, C)
        projection = (centered @ first_component[:, :, None])[..., 0]  # (N, h*w)
        flip = projection.amin(1).abs() > projection.amax(1).abs()
        projection = torch.where(flip[:, None], -projection, projection)
        return projection.view(activations.shape[0], *activations.shape[2:])


class RandomCAM(BaseCAM):
    """Not an explanation: a uniform random map at the layer's resolution, the chance baseline that the
    faithfulness table (cifar/measure/faithfulness_table.py) measures the methods against. Seeded: the same maps
    for the same seed."""

    uses_gradients = False

    def __init__(self, model, target_layers, seed: int = 0):
        super().__init__(model, target_layers)
        self.generator = torch.Generator().manual_seed(seed)

    def cam(self, images, targets, activations, gradients):
        random = torch.rand((len(activations), *activations.shape[2:]), generator=self.generator)  # (N, h, w)
        return random.to(activations.device)


class SobelCAM(BaseCAM):
    """Not an explanation: the image's own edges (the Sobel gradient magnitude of its grey levels, at the image's
    size). It ignores the model, its weights and the class: a baseline a method must beat to show more than where the
    picture has contrast, and the sanity check's example of a map that survives any randomization of the weights."""

    uses_gradients = False

    def cam(self, images, targets, activations, gradients):
        grey = F.pad(images.mean(1, keepdim=True), (1, 1, 1, 1), mode="replicate")  # (N, 1, H + 2, W + 2)
        across = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=images.dtype, device=images.device)
        edges = F.conv2d(grey, torch.stack([across, across.T])[:, None])  # (N, 2, H, W): d/dx, d/dy
        return edges.pow(2).sum(1).sqrt()


class CentreCAM(BaseCAM):
    """Not an explanation: a Gaussian blob at the image's centre (standard deviation a quarter of its side), the same
    for every image. CIFAR-10 objects sit in the middle of the picture: a method no better than this shows the
    dataset's habit, not the model's reasoning."""

    uses_gradients = False
    spread = 0.25  # of the image's side

    def cam(self, images, targets, activations, gradients):
        height, width = images.shape[-2:]
        rows = torch.arange(height, dtype=images.dtype, device=images.device) - (height - 1) / 2
        columns = torch.arange(width, dtype=images.dtype, device=images.device) - (width - 1) / 2
        blob = torch.exp(-(rows[:, None] / (self.spread * height)) ** 2 / 2 - (columns[None] / (self.spread * width)) ** 2 / 2)
        return blob.expand(len(images), height, width)


METHODS = {"Grad-CAM": GradCAM, "Grad-CAM++": GradCAMPlusPlus, "HiResCAM": HiResCAM, "XGrad-CAM": XGradCAM,
           "LayerCAM": LayerCAM, "Score-CAM": ScoreCAM, "Eigen-CAM": EigenCAM}

