"""Methods that fuse several maps into one: RefineCAM multiplies a layer's map with the deeper stages', FullGrad sums
the evidence of every layer with a bias, SESS fuses a method's maps of many views of the picture. Each hooks the
layers it needs (`layers_to_hook`) and combines their maps (`heatmaps`); the pass, hooks and cleanup stay the base's."""

import torch
import torch.nn.functional as F
from torchvision.transforms.functional import resize

from cifar.engine.cam.base import BaseCAM, gaussian_blurred
from cifar.engine.cam.gradient import GradCAM, GradCAMPlusPlus


class RefineCAM(GradCAMPlusPlus):
    """pytorch-grad-cam's RefineCAM (arXiv 2605.14641): the product of Grad-CAM++ maps at several layers, each in
    [0, 1], scaled again. An early layer's map is fine but noisy; the deeper stages' coarse maps keep only the part
    the whole network agrees on. At a layer, it fuses that layer with every stage output that runs after it (at
    layer2: layer2 x layer3 x layer4); at the last stage it is Grad-CAM++."""

    stages = ("layer1", "layer2", "layer3", "layer4")  # the stage outputs of a ResNet (ours, torchvision's)

    def fused_with(self, layer: str) -> tuple:
        """The layer and the stages after it in the forward pass: a later module, or one that contains the layer."""
        order = list(self.modules)
        return (layer, *(stage for stage in self.stages if stage in self.modules and stage != layer
                         and (order.index(stage) > order.index(layer) or layer.startswith(stage + "."))))

    def layers_to_hook(self):
        return tuple(dict.fromkeys(name for layer in self.target_layers for name in self.fused_with(layer)))

    def heatmaps(self, images, targets, activations, gradients):
        maps = {name: self.scaled(self.cam(images, targets, activations[name], gradients[name]), images)
                for name in self.layers_to_hook()}
        fused = [torch.stack([maps[name] for name in self.fused_with(layer)]).prod(0) for layer in self.target_layers]
        return torch.stack([self.scaled(product, images) for product in fused], 1)


class FullGrad(BaseCAM):
    """Srinivas & Fleuret 2019 ("Full-Gradient Representation"), as pytorch-grad-cam: |input gradient x input| plus,
    for every convolution and BatchNorm with a bias, |bias x gradient| of its output, each channel scaled to [0, 1]
    and brought to the input's size before they are summed. It uses every layer at once: the map is the same whatever
    layer is asked for."""

    uses_input_gradient = True
    ignores_layer = "it sums the evidence of every layer with a bias and of the input pixels"

    def layers_to_hook(self):
        return tuple(name for name, module in self.modules.items()
                     if type(module) in (torch.nn.Conv2d, torch.nn.BatchNorm2d) and module.bias is not None)

    def bias(self, name) -> torch.Tensor:
        """(C,) the bias a layer adds: a BatchNorm's, in eval mode, is its shift minus its scaled running mean."""
        layer = self.modules[name]
        if isinstance(layer, torch.nn.BatchNorm2d):
            return layer.bias - layer.running_mean * layer.weight / torch.sqrt(layer.running_var + layer.eps)
        return layer.bias

    def heatmaps(self, images, targets, activations, gradients):
        total = channels_scaled((gradients[""] * images).abs(), images).sum(1)  # (N, H, W)
        for name in self.layers_to_hook():
            total += channels_scaled((self.bias(name)[None, :, None, None] * gradients[name]).abs(), images).sum(1)
        low = total.amin((1, 2), keepdim=True)
        total = (total - low) / ((total - low).amax((1, 2), keepdim=True) + 1e-7)
        return total[:, None].expand(len(images), len(self.target_layers), *images.shape[-2:])


def channels_scaled(maps, images) -> torch.Tensor:
    """(N, C, H, W): each channel of (N, C, h, w) maps scaled to [0, 1] (the reference's scale_cam_image), then
    brought to the input's size."""
    low = maps.amin((2, 3), keepdim=True)
    maps = (maps - low) / ((maps - low).amax((2, 3), keepdim=True) + 1e-7)
    return F.interpolate(maps, size=images.shape[-2:], mode="bilinear", align_corners=False)


class SESS(BaseCAM):
    """Tyagi et al. 2022 ("SESS: Saliency Enhancing with Scaling and Sliding"), as pytorch-grad-cam's SESS with its
    defaults: the picture enlarged to 12 sizes (from its own, by 2/7 of it each), cut into windows of its own size,
    each window explained by Grad-CAM and weighted by the window's probability for the class (relative to the best
    window's), the maps pasted back where their windows came from and averaged where they are positive, then blurred
    (Gaussian, 11 px, sigma 5). Made for large photographs, whose object may be small or repeated; on CIFAR's 32 px the
    windows come from copies enlarged up to 4x. About 120 windows: costly."""

    uses_gradients = False  # its own pass only gives the class; the windows' Grad-CAM takes their own gradients
    costly = True
    base_method = GradCAM
    scales, scale_step = 12, 2 / 7
    batch_size = 32  # windows per call (the reference's)
    blur_size, blur_sigma = 11, 5.0

    def heatmaps(self, images, targets, activations, gradients):
        return torch.stack([self.fused(image[None], target) for image, target in zip(images, targets)])

    def fused(self, image, target) -> torch.Tensor:
        """(layers, H, W): one picture's fused maps at the target layers, each scaled to [0, 1]."""
        height, width = image.shape[-2:]
        window = min(height, width)
        windows, places = [], []  # places: (x, y, the enlarged picture's width and height)
        for size in (window + round(window * self.scale_step) * i for i in range(self.scales)):
            enlarged = resize(image, size)
            tall, wide = enlarged.shape[-2:]
            for y in starts(tall, window):
                for x in starts(wide, window):
                    windows.append(enlarged[:, :, y:y + window, x:x + window])
                    places.append((x, y, wide, tall))
        windows = torch.cat(windows)  # (W, 3, window, window)
        scores = torch.cat([self.model(batch).softmax(1) @ target for batch in windows.split(self.batch_size)])
        scores = scores.clamp_min(0)
        weights = scores / scores.max() if scores.max() > 0 else torch.ones_like(scores)
        explainer = self.base_method(self.model, self.target_layers)
        total = torch.zeros(len(self.target_layers), height, width, device=image.device)
        counts = torch.zeros_like(total)
        for start in range(0, len(windows), self.batch_size):
            batch = slice(start, start + self.batch_size)
            count = len(windows[batch])
            contrast = [int(target.argmin())] * count if (target < 0).any() else None  # why A and not B, per window
            maps = torch.from_numpy(explainer(windows[batch], [int(target.argmax())] * count, contrast)[0])
            maps = maps.to(image.device)  # (B, layers, w, w)
            for weighted, (x, y, wide, tall) in zip(maps * weights[batch, None, None, None], places[batch]):
                canvas = torch.zeros(len(self.target_layers), tall, wide, device=image.device)
                canvas[:, y:y + window, x:x + window] = weighted
                pasted = F.interpolate(canvas[None], size=(height, width), mode="bilinear", align_corners=False)[0]
                kept = pasted > 0
                total += torch.where(kept, pasted, 0)
                counts += kept
        fused = torch.where(counts > 0, total / counts.clamp_min(1), 0)
        fused = gaussian_blurred(fused, self.blur_sigma, self.blur_size // 2)  # as cv2.GaussianBlur's default border
        low = fused.amin((1, 2), keepdim=True)
        return (fused - low) / ((fused - low).amax((1, 2), keepdim=True) + 1e-7)


def starts(length: int, window: int) -> list:
    """Where the windows along one side begin: a window apart, the last moved back inside the picture (the
    reference's window_starts, with the step the window's size)."""
    found = []
    for start in range(0, length, window):
        if start + window >= length:
            found.append(max(length - window, 0))
            break
        found.append(start)
    return found
