"""Methods whose map at a layer needs other layers too: RefineCAM multiplies a layer's map with the deeper stages',
FullGrad sums the evidence of every layer with a bias. Each hooks the layers it needs (`layers_to_hook`) and combines
their maps (`heatmaps`); the pass, hooks and cleanup stay the base's."""

import torch
import torch.nn.functional as F

from cifar.engine.cam.base import BaseCAM
from cifar.engine.cam.gradient import GradCAMPlusPlus


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
