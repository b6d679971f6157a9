"""The one base of every CAM method, as pytorch-grad-cam's `BaseCAM`: it owns the hooks on the layers a map needs and
their cleanup (a context manager, so no hook outlives a call, even one that raises), the forward and backward pass,
and the scaling of a map to the input. A method says only what differs (pytorch-grad-cam's override points):

- `weights`: one weight per activation channel (Grad-CAM), or `cam`: the whole map (HiResCAM, Eigen-CAM);
- `score`: the number explained, when it is not the target class's logit (FinerCAM, ShapleyCAM);
- `gradients`: when a plain gradient is not what it weighs by (ShapleyCAM's second-order term);
- `layers_to_hook` and `heatmaps`: when a map needs other layers than the one it is drawn at (RefineCAM, FullGrad).

Gradient-free methods (Score-CAM, Eigen-CAM) set `uses_gradients = False`: the same forward hooks, no backward pass.

Safe under concurrent requests on one shared model: the hook records activations only for the thread that registered
it, and gradients are taken with `torch.autograd.grad` with respect to those activations, so no `.grad` on the shared
parameters is ever written.
"""

import threading
from collections.abc import Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F


class BaseCAM:
    """target_layers: one layer name, or several: their heatmaps all come from one forward and one backward pass (the
    app's strip across the four stages costs about one heatmap, not four)."""

    uses_gradients = True
    uses_input_gradient = False  # FullGrad: the gradient with respect to the image too
    # What a heatmap costs: False, one forward (and backward) pass for any number of layers; True, hundreds of passes:
    # one per channel of the layer (Score-CAM, Ablation-CAM: 512 at layer4), or per view of the picture (SESS). The page
    # limits the costly ones and asks a GPU for longer.
    costly = False
    # For a method whose map does not depend on the class asked for: why (the page says so). None: it does depend.
    ignores_class = None
    # For a method whose map is the same at every layer asked for: why. None: each layer has its own.
    ignores_layer = None

    def __init__(self, model: torch.nn.Module, target_layers: str | Sequence[str]):
        self.modules = dict(model.named_modules())
        self.target_layers = (target_layers,) if isinstance(target_layers, str) else tuple(target_layers)
        for name in self.target_layers:
            if name not in self.modules or not name:
                raise ValueError(f"unknown layer {name!r}: the model has no module of that name")
        self.model = model

    # -- What a method may say ---------------------------------------------------------------------------
    def weights(self, images, targets, activations, gradients) -> torch.Tensor:
        """(N, 3, H, W) images, (N, classes) targets (the score explained is targets . logits: a one-hot row for a
        class), (N, C, h, w) activations and gradients (None without gradients) -> (N, C) weights."""
        raise NotImplementedError

    def cam(self, images, targets, activations, gradients) -> torch.Tensor:
        """The (N, h, w) map before ReLU and scaling: by default the channels weighted by `weights`."""
        weights = self.weights(images, targets, activations, gradients)  # (N, C)
        return (weights[:, :, None, None] * activations).sum(1)

    def score(self, logits, targets) -> torch.Tensor:
        """(N,) the number each map explains: the target row's weighted logits (a class, or a class minus another)."""
        return (targets * logits).sum(1)

    def gradients(self, score, images, activations: list) -> list:
        """The gradients of the summed score with respect to each hooked layer's activations (and the images, first,
        for a method that `uses_input_gradient`)."""
        return list(torch.autograd.grad(score.sum(), ([images] if self.uses_input_gradient else []) + activations))

    def layers_to_hook(self) -> tuple:
        """The layers whose activations (and gradients) the maps need: by default the layers asked for."""
        return self.target_layers

    def heatmaps(self, images, targets, activations: dict, gradients: dict) -> torch.Tensor:
        """(N, len(target_layers), H, W) maps in [0, 1] from each hooked layer's activations and gradients (the
        image's gradient under the key "" for a method that `uses_input_gradient`)."""
        return torch.stack([self.scaled(self.cam(images, targets, activations[name], gradients[name]), images)
                            for name in self.target_layers], 1)

    # -- The pass --------------------------------------------------------------------------------------
    @contextmanager
    def _capture(self, names):
        captured, owner = {}, threading.get_ident()

        def hook_for(name):
            def hook(module, inputs, output):
                if threading.get_ident() == owner:
                    captured[name] = output
            return hook

        handles = [self.modules[name].register_forward_hook(hook_for(name)) for name in names]
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
        images = images.to(next(self.model.parameters()).device).detach()  # ours: requires_grad_ below leaves the caller's alone
        hooked = self.layers_to_hook()
        with self._capture(hooked) as captured, torch.set_grad_enabled(self.uses_gradients):
            images.requires_grad_(self.uses_input_gradient)
            logits = self.model(images)
            missing = [name for name in hooked if name not in captured]
            if missing:
                raise RuntimeError(f"layer {missing[0]!r} did not run in the forward pass")
            activations = [captured[name] for name in hooked]
            targets = self._targets(logits, target_classes, contrast_classes)  # (N, classes)
            names = ([""] if self.uses_input_gradient else []) + list(hooked)
            gradients = (self.gradients(self.score(logits, targets), images, activations) if self.uses_gradients
                         else [None] * len(names))
        # The hooks are gone: a method that runs the model again here (Score-CAM) records nothing.
        with torch.no_grad():
            cams = self.heatmaps(images.detach(), targets, {name: a.detach() for name, a in zip(hooked, activations)},
                                 dict(zip(names, gradients)))
        return cams.float().cpu().numpy(), logits.detach()

    @staticmethod
    def _targets(logits, target_classes, contrast_classes) -> torch.Tensor:
        """(N, classes) weights of the logits in the score to explain: +1 the target, -1 the contrast."""
        def one_hot(classes):
            classes = torch.as_tensor(classes, device=logits.device).expand(len(logits))
            return F.one_hot(classes, logits.shape[1]).to(logits.dtype)

        targets = one_hot(logits.argmax(1) if target_classes is None else target_classes)
        return targets if contrast_classes is None else targets - one_hot(contrast_classes)

    @staticmethod
    def scaled(cams, images) -> torch.Tensor:
        """(N, H, W): (N, h, w) maps' positive part at the input size, each scaled to [0, 1]."""
        cams = F.relu(cams)[:, None]  # (N, 1, h, w)
        cams = F.interpolate(cams, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]  # (N, H, W)
        low = cams.amin((1, 2), keepdim=True)
        return (cams - low) / (cams.amax((1, 2), keepdim=True) - low).clamp_min(1e-12)


def gaussian_blurred(maps, sigma: float, radius: int) -> torch.Tensor:
    """(M, H, W) maps blurred by a Gaussian of `sigma` pixels cut at `radius`, the border mirrored (reflect-101,
    OpenCV's and scipy's `mirror`), rows then columns."""
    offsets = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    kernel = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    padded = F.pad(maps[:, None], (radius,) * 4, mode="reflect")  # (M, 1, H + 2r, W + 2r)
    return F.conv2d(F.conv2d(padded, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))[:, 0]
