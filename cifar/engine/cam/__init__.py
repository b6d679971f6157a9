"""Class activation maps, our own implementation (the original project's point): every method of pytorch-grad-cam
1.5.7 that explains a CNN image classifier (docs/methods.md says which of its classes are not, and why), on one base.

    base.py        the hooks, the pass, the scaling: what every method shares
    gradient.py    methods that weigh activations by gradients (Grad-CAM and its successors)
    activation.py  methods without gradients (Score-CAM, Ablation-CAM, Eigen-CAM, KPCA-CAM, FEM)
    fused.py       methods that fuse several maps into one (RefineCAM, FullGrad, SESS)
    baselines.py   maps that ignore the model (random, edges, centre): the controls
"""

from cifar.engine.cam.activation import FEM, AblationCAM, EigenCAM, KPCACAM, ScoreCAM
from cifar.engine.cam.base import BaseCAM
from cifar.engine.cam.baselines import CentreCAM, RandomCAM, SobelCAM, blurred
from cifar.engine.cam.fused import SESS, FullGrad, RefineCAM
from cifar.engine.cam.gradient import (EigenGradCAM, FinerCAM, GradCAM, GradCAMElementWise, GradCAMPlusPlus, HiResCAM,
                                       LayerCAM, SegEigenCAM, ShapleyCAM, XGradCAM)

# The methods the engine offers, by the names the page and the API use: the original seven first.
METHODS = {"Grad-CAM": GradCAM, "Grad-CAM++": GradCAMPlusPlus, "HiResCAM": HiResCAM, "XGrad-CAM": XGradCAM,
           "LayerCAM": LayerCAM, "Score-CAM": ScoreCAM, "Eigen-CAM": EigenCAM,
           "Grad-CAM element-wise": GradCAMElementWise, "Eigen-Grad-CAM": EigenGradCAM, "Seg-Eigen-CAM": SegEigenCAM,
           "ShapleyCAM": ShapleyCAM,
           "FinerCAM": FinerCAM, "Ablation-CAM": AblationCAM, "KPCA-CAM": KPCACAM, "FEM": FEM,
           "RefineCAM": RefineCAM, "FullGrad": FullGrad, "SESS": SESS}

__all__ = ["METHODS", "BaseCAM", "CentreCAM", "RandomCAM", "SobelCAM", "blurred", *(method.__name__ for method in METHODS.values())]
