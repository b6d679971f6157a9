"""Serving speed, in-process: a prediction, a heatmap beside pytorch-grad-cam's, the test-set evaluation."""

import statistics
import time

import numpy as np

from cifar.engine.predict import TTA_MODES, predict_arrays
from cifar.engine.explainer import DEFAULT_LAYER, STAGE_LAYERS
from cifar.engine.cam import GradCAM, ScoreCAM
from cifar.engine.predict import image_tensor, probabilities
from cifar.engine.pictures import load_image, prepare
from cifar.runs.folder import load_run

from .common import example_paths, images, p50_ms, rate, report


def bench_inference(model_path):
    run = load_run(model_path)
    model, served_tta = run.model, run.metrics["tta"]
    image = images(1)[0]
    inputs = image_tensor(image)
    for tta in TTA_MODES:
        served = "  <- the app serves this by default" if tta == served_tta else ""
        print(f"{f'predict, one image, {tta} TTA (p50)':<48} "
              f"{p50_ms(lambda: probabilities(model, image, tta)):8.1f} ms   (target <= 15 ms){served}")
    ours_cam = lambda: GradCAM(model, DEFAULT_LAYER)(inputs)
    from pytorch_grad_cam import GradCAM as ReferenceGradCAM

    layer = dict(model.named_modules())[DEFAULT_LAYER]

    def reference():
        with ReferenceGradCAM(model=model, target_layers=[layer]) as cam:
            cam(input_tensor=inputs, targets=None)

    for tta in dict.fromkeys((served_tta, "none")):  # the default, and app.py --tta none
        explain = p50_ms(lambda: (probabilities(model, image, tta), ours_cam()))
        print(f"{f'predict ({tta} TTA) + Grad-CAM, one image (p50)':<48} {explain:8.1f} ms   (target <= 40 ms)")
    report("Grad-CAM alone vs pytorch-grad-cam (p50)", p50_ms(ours_cam), p50_ms(reference), "ms",
           higher_is_better=False)
    test_images = images(1024)
    report("test-set evaluation, default batch vs 500 (img/s)", rate(lambda: predict_arrays(model, test_images), 1024),
           rate(lambda: predict_arrays(model, test_images, batch_size=500), 1024), "img/s")
    # The app's explanation: the chosen layer plus a strip across the four stages.
    layers = (DEFAULT_LAYER, *STAGE_LAYERS)
    report("5 heatmaps in one pass vs one layer at a time (p50)", p50_ms(lambda: GradCAM(model, layers)(inputs)),
           p50_ms(lambda: [GradCAM(model, layer)(inputs) for layer in layers]), "ms", higher_is_better=False)
    # Score-CAM on the page: the chosen layer's heatmap alone, before the strip (it used to wait for all four stages),
    # on the examples (the number of forward passes is the image's count of non-silent channels).
    examples = np.stack([prepare(load_image(path))[0] for path in example_paths()])
    heatmap_alone = statistics.median(seconds(lambda: ScoreCAM(model, DEFAULT_LAYER)(image_tensor(x))) for x in examples)
    with_strip = statistics.median(seconds(lambda: ScoreCAM(model, STAGE_LAYERS)(image_tensor(x))) for x in examples)
    report("Score-CAM heatmap at layer4 vs with the strip (median, 10 examples)", heatmap_alone, with_strip, "s",
           higher_is_better=False)
    print(f"{'':<48} (target: the heatmap within 3 s)")


def seconds(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
