"""The methods that weigh a layer's activations by the gradient of the explained score: the original project's
Grad-CAM and its successors, each as pytorch-grad-cam 1.5.7 computes it."""

import torch
import torch.nn.functional as F

from cifar.engine.cam.base import BaseCAM
from cifar.engine.cam.projection import first_component


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


class GradCAMElementWise(BaseCAM):
    """pytorch-grad-cam's element-wise Grad-CAM: HiResCAM with each position's gradient x activation clipped at zero
    before the channels are summed, so a channel's negative evidence cannot cancel another's positive."""

    def cam(self, images, targets, activations, gradients):
        return F.relu(gradients * activations).sum(1)


class XGradCAM(BaseCAM):
    """Fu et al. 2020: each channel's gradients averaged with its own activations as weights."""

    def weights(self, images, targets, activations, gradients):
        return (gradients * activations).sum((2, 3)) / (activations.sum((2, 3)) + 1e-7)


class LayerCAM(BaseCAM):
    """Jiang et al. 2021: each position of each channel weighted by its own positive gradient, which keeps
    the finer detail of early layers."""

    def cam(self, images, targets, activations, gradients):
        return (F.relu(gradients) * activations).sum(1)


class EigenGradCAM(BaseCAM):
    """Eigen-CAM (below) on gradient x activation instead of the activations alone: the main pattern of what raises
    the score, so, unlike Eigen-CAM, it depends on the class."""

    def cam(self, images, targets, activations, gradients):
        return first_component(gradients * activations)


class SegEigenCAM(BaseCAM):
    """Chung & Ying 2025 ("Seg-Eigen-CAM", made for segmentation models, where it is published): Eigen-CAM of |gradient|
    x activation, so negative gradients count as evidence too, sign-corrected as Eigen-CAM."""

    def cam(self, images, targets, activations, gradients):
        return first_component(gradients.abs() * activations)


class ShapleyCAM(GradCAM):
    """Cai 2025 ("CAMs as Shapley value-based explainers", arXiv 2501.06261): Grad-CAM's weights from the gradient
    minus half the Hessian-vector product with the activations (a second-order estimate of each channel's Shapley
    value), explaining the ReST score (the logit minus the cross-entropy: pre- and post-softmax at once), as the
    reference's ClassifierOutputReST. For a logit alone the Hessian of a ReLU network is zero: it would be Grad-CAM."""

    def score(self, logits, targets):
        return (targets * (logits + logits.log_softmax(1))).sum(1)

    def gradients(self, score, images, activations):
        firsts = torch.autograd.grad(score.sum(), activations, create_graph=True)
        shapley = []
        for first, activation in zip(firsts, activations):
            hessian_vector = (torch.autograd.grad(first, activation, grad_outputs=activation.detach(), retain_graph=True,
                                                  allow_unused=True)[0] if first.requires_grad else None)
            shapley.append((first if hessian_vector is None else first - 0.5 * hessian_vector).detach())
        return shapley


class FinerCAM(GradCAM):
    """Zhang et al. 2025 ("Finer-CAM", CVPR): Grad-CAM of the target's logit minus those of the classes the model
    finds most alike (the COMPARED classes whose logits are nearest the target's), each weighted by its probability:
    what tells the class from its neighbours, where Grad-CAM shows everything the class shares with them. The
    reference's FinerWeightedTarget, alpha 1. With a contrast class asked for, the map compares with that one alone
    (our why-A-not-B)."""

    compared = 3  # the reference's default comparison categories (1, 2, 3): the three nearest
    alpha = 1.0  # how much of each neighbour's logit is subtracted (the reference's default)

    def score(self, logits, targets):
        if (targets < 0).any():  # a contrast was asked for: it is the comparison
            return super().score(logits, targets)
        main = logits.gather(1, targets.argmax(1, keepdim=True))  # (N, 1)
        nearest = (logits - main).abs().detach().argsort(dim=1, stable=True)[:, 1:1 + self.compared]  # (N, compared)
        weights = logits.softmax(1).gather(1, nearest)
        return (weights * (main - self.alpha * logits.gather(1, nearest))).sum(1) / (weights.sum(1) + 1e-9)
