"""The test set as a map, added to a run folder: each test image's penultimate features (the 512 numbers the last layer
weighs) reduced to 2-D by UMAP, seeded, so that images the model sees alike lie close together.

    python -m cifar.measure.test_map checkpoints/resnet18-cifar10 --data-dir ../shared/cifar10

writes test_map.npz (the points, and the labels they were made with), metrics.json "test_map" (settings and how well the map keeps neighbours), the
figure test_map.png (coloured by true class) and its section of the model card. The page's Test-set map tab draws it.
"""

import time

import numpy as np

from cifar.engine.predict import predict_arrays
from cifar.engine.test_map import COLOURINGS, TestMap, colouring
from cifar.files import atomic_write
from cifar.measure import on_the_test_set
from cifar.runs.folder import TEST_MAP_FIGURE, TEST_MAP_FILE, add_measurement, save_npz

CARD_HEADING = "## The test set as a map"
# UMAP's settings: its defaults (15 neighbours, min_dist 0.1), Euclidean on the features as the last layer sees them,
# seeded (which also makes it run on one thread).
UMAP_SETTINGS = {"n_neighbors": 15, "min_dist": 0.1, "metric": "euclidean", "random_state": 0}
TRUSTWORTHINESS_SAMPLE = 2000  # images the map's trustworthiness is measured on (all 10,000 would take minutes)
TRUSTWORTHINESS_NEIGHBOURS = 10


def penultimate_features(model, images: np.ndarray) -> np.ndarray:
    """(N, 512) float32: the input of the model's last layer for each uint8 image, one plain view (no TTA)."""
    captured = []
    hook = model.fc.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0].float().cpu()))
    try:
        predict_arrays(model, images, "none")
    finally:
        hook.remove()
    return np.concatenate([batch.numpy() for batch in captured])


def reduce_to_map(features: np.ndarray) -> np.ndarray:
    """(N, 2) float32 UMAP coordinates of the features, the same for the same features on the same versions."""
    import umap  # imported here: it compiles with numba at import (seconds), and only this command needs it

    # One thread, as a seed makes it anyway (said here, so that UMAP does not warn about it).
    return umap.UMAP(n_components=2, n_jobs=1, **UMAP_SETTINGS).fit_transform(features).astype(np.float32)


def trustworthiness(features: np.ndarray, points: np.ndarray) -> float:
    """How well the map keeps each image's nearest neighbours (1: all kept), on a seeded sample."""
    from sklearn.manifold import trustworthiness as score

    chosen = np.random.default_rng(0).choice(len(points), min(TRUSTWORTHINESS_SAMPLE, len(points)), replace=False)
    return float(score(features[chosen], points[chosen], n_neighbors=TRUSTWORTHINESS_NEIGHBOURS))


def card_section(value: dict) -> str:
    return (f"{CARD_HEADING}\n\nEach of the {value['images']} test images at a point of the plane: its penultimate "
            f"features ({value['features']}) reduced to 2-D by UMAP {value['umap_version']} "
            f"({value['n_neighbors']} neighbours, min_dist {value['min_dist']}, seed {value['random_state']}); images "
            f"the model sees alike lie close together. Trustworthiness {value['trustworthiness']:.3f} (how well the "
            f"map keeps each image's {TRUSTWORTHINESS_NEIGHBOURS} nearest neighbours, on {value['trustworthiness_on']} "
            "images; 1 keeps all). The app's Test-set map tab colours it by true or predicted class, right or wrong, "
            f"calibrated confidence or where two models disagree.\n\n![test set map]({TEST_MAP_FIGURE})\n\n")


def main(argv=None):
    import umap

    _, _, run, images, labels = on_the_test_set(__doc__, argv)
    started = time.perf_counter()
    features = penultimate_features(run.model, images)
    points = reduce_to_map(features)
    value = {"images": len(points), "features": f"{features.shape[1]} numbers, the input of the last layer, no TTA",
             "umap_version": umap.__version__, **UMAP_SETTINGS, "trustworthiness": round(trustworthiness(features, points), 4),
             "trustworthiness_on": min(TRUSTWORTHINESS_SAMPLE, len(points)),
             "seconds": round(time.perf_counter() - started, 1)}
    # The labels with the points: the map colours by true class without the test set, and knows its test set again.
    atomic_write(run.path / TEST_MAP_FILE, lambda tmp: save_npz(tmp, {"points": points, "labels": labels.astype(np.uint8)}))
    figure = TestMap(points).figure(colouring(COLOURINGS[0], run.classes, labels, labels, np.ones(len(labels))))
    add_measurement(run.path, "test_map", value, figure, TEST_MAP_FIGURE, CARD_HEADING, card_section(value))
    print(card_section(value))


if __name__ == "__main__":
    main()
