"""From an uploaded picture to what the model sees, and back to something a person can look at: a picture enlarged,
a heatmap blended onto it.
"""

from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import PIL.ImageOps


INPUT_SIZE = 32

DISPLAY_SIZE = 256  # the side of every image the app shows: 32x32 is too small to see
THUMBNAIL_SIZE = 128  # the side of a gallery's pictures, and of an export's heatmap overlays

MAX_PIXELS = 40_000_000  # larger is a decompression bomb or no photo of a CIFAR class
MAX_BYTES = 10_000_000  # a photo is well under; a ZIP of many may be larger (cifar/page/layout.MAX_UPLOAD)


class BadImage(ValueError):
    """An upload we cannot use; the message is written for the person who uploaded it."""


def load_image(value) -> PIL.Image.Image:
    """A decoded PIL image from a file path, a PIL image or an array, or BadImage saying what is wrong."""
    if value is None:
        raise BadImage("Upload an image first (or pick one of the examples).")
    if isinstance(value, PIL.Image.Image):
        return value
    if isinstance(value, np.ndarray):
        return PIL.Image.fromarray(value)
    path = Path(value)
    if not path.is_file() or path.stat().st_size == 0:
        raise BadImage("The file is empty.")
    if path.stat().st_size > MAX_BYTES:
        raise BadImage(f"The file is over {MAX_BYTES // 1_000_000} MB: a picture of one object is well under.")
    try:
        image = PIL.Image.open(path)
        if image.width * image.height > MAX_PIXELS:
            raise BadImage(f"The image is too large ({image.width}x{image.height} pixels); "
                           f"the limit is {MAX_PIXELS // 1_000_000} megapixels.")
        image.seek(0)  # animated GIF/WebP: the first frame
        image.load()
    except PIL.Image.DecompressionBombError:
        raise BadImage(f"The image is too large; the limit is {MAX_PIXELS // 1_000_000} megapixels.") from None
    except PIL.UnidentifiedImageError:
        raise BadImage("This file is not an image we can read (PNG, JPEG, GIF, WebP, BMP or TIFF).") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise BadImage(f"The image file is truncated or corrupt ({error}).") from None
    return image


def to_rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    """Any PIL image (EXIF-rotated, grayscale, palette, RGBA, 16-bit, CMYK) -> upright 8-bit RGB.

    Transparent pixels become white, which is what a viewer shows for them."""
    image = PIL.ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit samples (Pillow opens 16-bit PNG and TIFF as I;16 or I): 65535 is white, as in any
        # viewer. PIL's own convert("RGB") clips them at 255, which turns almost every pixel white.
        array = np.asarray(image, dtype=np.float64)
        image = PIL.Image.fromarray(np.uint8(np.clip(np.round(array / 257), 0, 255)))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        white = PIL.Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = PIL.Image.alpha_composite(white, image)
    return image.convert("RGB")


def square(image: PIL.Image.Image) -> PIL.Image.Image:
    """Center crop to a square: CIFAR objects are centered and fill the frame."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side))


def prepare(image: PIL.Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """(32x32 uint8 RGB model input, DISPLAY_SIZE uint8 RGB view of the same crop)."""
    cropped = square(to_rgb(image))
    small = cropped.resize((INPUT_SIZE, INPUT_SIZE), PIL.Image.Resampling.BOX, reducing_gap=None)
    display = cropped.resize((DISPLAY_SIZE, DISPLAY_SIZE), PIL.Image.Resampling.BICUBIC)
    return np.asarray(small), np.asarray(display)


def enlarge(image: np.ndarray, size: int = DISPLAY_SIZE) -> np.ndarray:
    """Nearest-neighbour upscale, so a 32x32 image shows its real pixels."""
    return np.asarray(PIL.Image.fromarray(image).resize((size, size), PIL.Image.Resampling.NEAREST))


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
