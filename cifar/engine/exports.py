"""What a user takes away: a set of pictures with their heatmaps as one ZIP, the same for the Test set tab, the test-set
map and a user's own pictures: images/NAME.png (32x32, what the model saw), heatmaps/NAME.png (the map on the enlarged
picture) and heatmaps/NAME.npy ((32, 32) float32 in [0, 1]), index.csv (a row per picture) and manifest.json (how it
was made: model, method, layer, TTA, versions)."""

import csv
import io
import json
import platform
import zipfile

import numpy as np
import PIL.Image

from cifar.engine.pictures import THUMBNAIL_SIZE, enlarge, overlay


def export_zip(names: list, images: np.ndarray, maps: np.ndarray, rows: list[dict], manifest: dict) -> bytes:
    """The ZIP of pictures `images` (N, 32, 32, 3) uint8 and their `maps` (N, 32, 32), stored under `names` (safe file
    stems of ours, never a user's); `rows` (dicts with the same keys) become index.csv."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, image, heatmap in zip(names, images, maps):
            archive.writestr(f"images/{name}.png", png_bytes(image))
            archive.writestr(f"heatmaps/{name}.png", png_bytes(overlay(enlarge(image, THUMBNAIL_SIZE), heatmap)))
            archive.writestr(f"heatmaps/{name}.npy", npy_bytes(heatmap.astype(np.float32)))
        table = io.StringIO()
        if rows:
            writer = csv.DictWriter(table, list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        archive.writestr("index.csv", table.getvalue())
        archive.writestr("manifest.json", json.dumps({**manifest, "versions": versions()}, indent=2))
    return buffer.getvalue()


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def versions() -> dict:
    """What an export was made with."""
    import gradio
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "gradio": gradio.__version__}
