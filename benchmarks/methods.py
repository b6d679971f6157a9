"""What each CAM method costs: one picture's heatmap at layer4 and the page's strip of the four stages, ours beside
pytorch-grad-cam's same method (its class, its default settings) measured in the same run."""

import pytorch_grad_cam as reference_cams
from pytorch_grad_cam.utils.model_targets import ClassifierOutputReST, ClassifierOutputTarget

from cifar.engine.cam import METHODS
from cifar.engine.explainer import STAGE_LAYERS
from cifar.engine.predict import image_tensor
from cifar.runs.folder import load_run

from .common import images, p50_ms, report

# The reference's class for each of ours (ShapleyCAM explains the ReST score there as here).
REFERENCES = {"Grad-CAM": "GradCAM", "Grad-CAM++": "GradCAMPlusPlus", "HiResCAM": "HiResCAM", "XGrad-CAM": "XGradCAM",
              "LayerCAM": "LayerCAM", "Score-CAM": "ScoreCAM", "Eigen-CAM": "EigenCAM",
              "Grad-CAM element-wise": "GradCAMElementWise", "Eigen-Grad-CAM": "EigenGradCAM",
              "Seg-Eigen-CAM": "SegEigenCAM", "ShapleyCAM": "ShapleyCAM", "FinerCAM": "FinerCAM",
              "Ablation-CAM": "AblationCAM", "KPCA-CAM": "KPCA_CAM", "FEM": "FEM", "RefineCAM": "RefineCAM",
              "FullGrad": "FullGrad", "SESS": "SESS"}


def bench_methods(model_path):
    model = load_run(model_path).model
    picture = image_tensor(images(1)[0])
    modules = dict(model.named_modules())
    target = int(model(picture).argmax())
    for name, method in METHODS.items():
        reference = getattr(reference_cams, REFERENCES[name])
        repeats = 3 if method.costly else 10
        goal = ClassifierOutputReST(target) if name == "ShapleyCAM" else ClassifierOutputTarget(target)
        # RefineCAM fuses the stages after the layer: at layer4, Grad-CAM++ alone; FullGrad takes every bias layer.
        layers = [] if name == "FullGrad" else [modules["layer4"]]

        def theirs():
            cam = reference(model=model, target_layers=layers)
            if name == "FinerCAM":
                return cam(input_tensor=picture, target_idx=target)
            return cam(input_tensor=picture, targets=[goal])

        ours = p50_ms(lambda: method(model, "layer4")(picture, target), repeats)
        report(f"{name} at layer4 vs pytorch-grad-cam (p50)", ours, p50_ms(theirs, repeats), "ms",
               higher_is_better=False)
        strip = p50_ms(lambda: method(model, STAGE_LAYERS)(picture, target), repeats)
        print(f"{'  the strip (four stages, one call)':<48} ours {strip:10.1f} ms")
