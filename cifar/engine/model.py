"""ResNet-18, CIFAR variant: a 3x3 stem with no max-pool, so layer1 works at the full 32x32.

Module names follow torchvision's ResNet (`conv1`, `bn1`, `layer1`..`layer4`, `fc`), so a layer such as
`layer4.1.conv2` means the same thing here as in any Grad-CAM tutorial. The input normalization lives
inside the model (as buffers, not parameters): a checkpoint carries its own mean/std and every caller
feeds plain [0, 1] pixels.
"""

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from safetensors.torch import load_file, save_file
from torch.nn.utils.fusion import fuse_conv_bn_eval

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
WEIGHTS_NAME = "model.safetensors"


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != channels:
            # 1x1 projection so the residual has the shape of the block's output.
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module, PyTorchModelHubMixin, library_name="pytorch", tags=["image-classification", "cifar10", "grad-cam"]):
    """CIFAR ResNet-18: 11,173,962 trainable parameters. Input: (N, 3, 32, 32) float pixels in [0, 1]."""

    def __init__(self, num_classes: int = 10, classes: tuple = CLASSES,
                 mean: tuple = CIFAR10_MEAN, std: tuple = CIFAR10_STD):
        super().__init__()
        self.classes = list(classes)
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._stage(64, 64, stride=1)
        self.layer2 = self._stage(64, 128, stride=2)
        self.layer3 = self._stage(128, 256, stride=2)
        self.layer4 = self._stage(256, 512, stride=2)
        self.fc = nn.Linear(512, num_classes)
        # Not persistent: they come back from config.json, so the weights file holds weights only.
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    @staticmethod
    def _stage(in_channels: int, channels: int, stride: int) -> nn.Sequential:
        return nn.Sequential(BasicBlock(in_channels, channels, stride), BasicBlock(channels, channels, 1))

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def clone(self) -> "ResNet18":
        """An eval-mode copy with its own weights, on this model's device. Built from the state dict, not traced and
        not a deep copy: safe while other threads run this model, and none of its hooks come with it."""
        with torch.device("meta"):  # no initialisation of weights about to be replaced
            twin = ResNet18(self.fc.out_features, tuple(self.classes))
        twin.load_state_dict({k: v.clone() for k, v in self.state_dict().items()}, assign=True)
        twin.mean, twin.std = self.mean.clone(), self.std.clone()
        return twin.eval()

    def fused(self) -> "ResNet18":
        """An eval-mode copy for many forward passes without gradients (Score-CAM: one per channel): each BatchNorm
        folded into the convolution before it and the weights stored channels-last: on a 2-core CPU, 1.6x the
        images/s of this model in batches of 32, 1.13x on a whole Score-CAM heatmap
        (BENCHMARKS.md), logits within about 1e-5 of this model's. A clone: safe while other threads run this model."""
        twin = self.clone()
        pairs = [(twin, "conv1", "bn1")]
        for block in (b for b in twin.modules() if isinstance(b, BasicBlock)):
            pairs += [(block, "conv1", "bn1"), (block, "conv2", "bn2")]
            if len(block.shortcut):
                pairs.append((block.shortcut, "0", "1"))
        for parent, conv, norm in pairs:
            setattr(parent, conv, fuse_conv_bn_eval(getattr(parent, conv), getattr(parent, norm)))
            setattr(parent, norm, nn.Identity())
        return twin.to(memory_format=torch.channels_last)

    def _save_pretrained(self, save_directory: Path) -> None:
        # fp16 storage halves the file (22 MB instead of 45 MB); accuracy is measured on what ships.
        state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(Path(save_directory) / WEIGHTS_NAME))

    @classmethod
    def _from_pretrained(cls, *, model_id, revision, cache_dir, force_download, local_files_only,
                         token, map_location="cpu", strict=True, **model_kwargs):
        # The mixin's default is strict=False, which would silently load a wrong checkpoint with
        # random layers. We always check every key, and never unpickle: safetensors only.
        model = cls(**model_kwargs)
        path = Path(model_id) / WEIGHTS_NAME
        if not Path(model_id).is_dir():
            from huggingface_hub import hf_hub_download

            path = hf_hub_download(model_id, WEIGHTS_NAME, revision=revision, cache_dir=cache_dir,
                                   force_download=force_download, token=token,
                                   local_files_only=local_files_only)
        # Read on the CPU, then moved: on a ZeroGPU Space only .to("cuda") is deferred until a GPU is attached.
        state = {k: v.float() for k, v in load_file(str(path)).items()}
        model.load_state_dict(state, strict=True)
        return model.to(map_location).eval()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
