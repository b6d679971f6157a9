"""The main pattern of a layer's (N, C, h, w) activations: each position a point in channel space, projected on the
first principal component (Eigen-CAM, Eigen-Grad-CAM) or on the first kernel principal component (KPCA-CAM).

A component's sign is arbitrary: the sign that makes the larger extreme positive is kept, as pytorch-grad-cam's
get_2d_projection_with_sign_correction (and scikit-learn's svd_flip, which its KernelPCA applies: the entry of
largest magnitude positive, the same rule)."""

import torch


def positions(activations) -> torch.Tensor:
    """(N, h*w, C): each position's channels, centred over the positions."""
    points = activations.flatten(2).transpose(1, 2)
    return points - points.mean(1, keepdim=True)


def first_component(activations) -> torch.Tensor:
    """(N, h, w): the positions projected on their first principal component."""
    centred = positions(activations)
    component = torch.linalg.svd(centred, full_matrices=False).Vh[:, 0]  # (N, C)
    return sign_corrected((centred @ component[:, :, None])[..., 0]).view(activations.shape[0], *activations.shape[2:])


def first_kernel_component(activations, gamma: float | None = None, coef0: float = 1.0) -> torch.Tensor:
    """(N, h, w): the positions projected on the first principal component of the sigmoid kernel
    tanh(gamma <x, y> + coef0) (scikit-learn's KernelPCA, its defaults: gamma 1 / channels, coef0 1)."""
    centred = positions(activations).double()  # (N, P, C); the kernel's eigenvalues are close: float64, as sklearn
    gamma = 1.0 / centred.shape[2] if gamma is None else gamma
    kernel = torch.tanh(gamma * centred @ centred.transpose(1, 2) + coef0)  # (N, P, P)
    # Centred in feature space (sklearn's KernelCenterer): subtract row and column means, add the overall mean.
    kernel = kernel - kernel.mean(1, keepdim=True) - kernel.mean(2, keepdim=True) + kernel.mean((1, 2), keepdim=True)
    values, vectors = torch.linalg.eigh(kernel)  # ascending
    projection = vectors[..., -1] * values[:, -1:].clamp_min(0).sqrt()  # (N, P): as KernelPCA.fit_transform
    return sign_corrected(projection).float().view(activations.shape[0], *activations.shape[2:])


def sign_corrected(projection) -> torch.Tensor:
    """(N, P) projections, each flipped where its most negative value outweighs its most positive."""
    flip = projection.amin(1).abs() > projection.amax(1).abs()
    return torch.where(flip[:, None], -projection, projection)
