"""What the page shows of an explanation: a heatmap blended onto the picture, and the files pictures are served
from (written once, named by their content, pruned after an hour)."""

import hashlib
import io
import itertools
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import PIL.Image

from .files import atomic_write


def overlay(image: np.ndarray, cam: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Blend a [0, 1] heatmap (JET colormap) onto an RGB uint8 image; `opacity` is the heatmap's
    weight: 0 shows the image alone, 1 the heatmap alone."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    height, width = image.shape[:2]
    cam = cv2.resize(cam.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    heat = cv2.applyColorMap(np.uint8(255 * cam.clip(0, 1)), cv2.COLORMAP_JET)
    heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)
    return np.uint8((1 - opacity) * image + opacity * heat)


IMAGE_DIR = Path(tempfile.gettempdir()) / "cifar-demo"
CACHE_SECONDS = 3600  # our images and Gradio's cached copies live an hour
JPEG_QUALITY = 95  # with no chroma subsampling: no visible loss on a heatmap
_image_counter = itertools.count(1)


def image_file(image: np.ndarray, exact: bool = False) -> str:
    """The image as a file named by its content, written atomically: PNG when `exact` (a 32x32 picture enlarged,
    flat blocks that PNG stores small and exactly), else JPEG (a heatmap overlay: smooth, and as JPEG ~40x faster
    to encode and ~7x smaller to send than PNG, which matters on a share link; BENCHMARKS.md).

    Returning arrays lets Gradio write them to its cache with a plain write_bytes on a content-hashed
    path: two users getting the same picture at once could have one rewrite the file while the other
    downloads it (seen as "peer closed connection" under load). A file path goes through Gradio's
    atomic copy instead.
    """
    buffer = io.BytesIO()
    if exact:
        PIL.Image.fromarray(image).save(buffer, format="PNG")
    else:
        PIL.Image.fromarray(image).save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    data = buffer.getvalue()
    path = IMAGE_DIR / f"{hashlib.sha256(data).hexdigest()[:32]}.{'png' if exact else 'jpg'}"
    try:
        os.utime(path)  # handed out again: keep it out of the next prune
    except FileNotFoundError:
        IMAGE_DIR.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: tmp.write_bytes(data))
    if next(_image_counter) % 1000 == 0:
        prune(IMAGE_DIR, CACHE_SECONDS)
    return str(path)


def prune(folder: Path, max_age: float) -> None:
    """Delete files older than max_age seconds: a public demo must not fill the disk."""
    cutoff = time.time() - max_age
    for old in folder.iterdir():
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except FileNotFoundError:  # another request pruned it first
            pass
