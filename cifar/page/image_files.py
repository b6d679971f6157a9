"""The files the page's pictures are served from: written once, named by their content, pruned after an hour."""

import hashlib
import io
import itertools
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL.Image

from cifar.files import atomic_write


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


# What an export's ROAD column means.
ROAD_MEANING = "ROAD (most relevant first minus least relevant first), for the class the heatmap explains"


def archive_file(data: bytes, prefix: str) -> str:
    """An export's ZIP as a file named by its content (no user's file name in it), written atomically."""
    path = IMAGE_DIR / f"{prefix}-{hashlib.sha256(data).hexdigest()[:16]}.zip"
    IMAGE_DIR.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
    return str(path)
