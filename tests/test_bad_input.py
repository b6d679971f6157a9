"""Everything people upload to a public demo, through the API: a clear message each time, and the app
keeps serving correct answers afterwards."""

import io

import numpy as np
import PIL.Image
import pytest
from gradio_client import handle_file

from cifar.engine.pictures import enlarge, load_image, prepare, to_rgb
from tests.conftest import EXAMPLES


def png_bytes(image: PIL.Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, **options)
    return buffer.getvalue()


def photo(mode="RGB", size=(48, 40)):
    rng = np.random.default_rng(0)
    return PIL.Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)


def exif_rotated_jpeg() -> bytes:
    """64x32 stored sideways (red left half, blue right half) with EXIF orientation 6: upright it is
    32x64 with red on top."""
    stored = np.zeros((32, 64, 3), np.uint8)
    stored[:, :32] = (255, 0, 0)
    stored[:, 32:] = (0, 0, 255)
    exif = PIL.Image.Exif()
    exif[0x0112] = 6
    return png_bytes(PIL.Image.fromarray(stored), format="JPEG", quality=95, exif=exif)


def animated_gif() -> bytes:
    frames = [PIL.Image.new("RGB", (32, 32), color) for color in ("green", "red", "blue")]
    return png_bytes(frames[0], format="GIF", save_all=True, append_images=frames[1:], duration=100)


def filled(height, width, color) -> np.ndarray:
    return np.full((height, width, 3), color, np.uint8)


def gray_to_rgb(array: np.ndarray) -> np.ndarray:
    return np.repeat(array[..., None], 3, axis=2)


def half_transparent() -> PIL.Image.Image:
    """Opaque red on the left, fully transparent red on the right."""
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :20, 3] = 255
    return PIL.Image.fromarray(rgba)


def palette_with_transparency() -> PIL.Image.Image:
    """A palette image whose index 1 (the bottom half) is the transparent colour."""
    image = PIL.Image.new("P", (40, 40), 0)
    image.putpalette([0, 0, 255, 255, 0, 0] + [0] * 762)
    image.paste(1, (0, 20, 40, 40))
    image.info["transparency"] = 1
    return image


SIXTEEN_BIT = np.arange(40 * 40, dtype=np.uint16).reshape(40, 40) * 40  # 0 .. 63,960: a dark-to-light ramp
WHITE, RED, BLUE = (255, 255, 255), (255, 0, 0), (0, 0, 255)

REFUSED = {  # file name -> (bytes, words the message must contain)
    "notes.png": (b"this is text, not an image\n" * 20, "not an image"),
    "paper.pdf": (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n", "not an image"),
    "empty.png": (b"", "empty"),
    "truncated.png": (png_bytes(photo(), format="PNG")[:300], "truncated or corrupt"),
    "truncated.jpg": (png_bytes(photo(size=(256, 256)), format="JPEG")[:600], "truncated or corrupt"),
    "bomb.png": (png_bytes(PIL.Image.new("1", (20000, 20000)), format="PNG"), "too large"),
}

# file name -> (bytes, the upright 8-bit RGB picture a viewer shows for it, tolerated mean difference per
# channel value): lossless formats decode exactly, JPEGs within their compression error.
ACCEPTED = {
    "one-pixel.png": (png_bytes(PIL.Image.new("RGB", (1, 1), "orange"), format="PNG"), filled(1, 1, (255, 165, 0)), 0),
    "gray.png": (png_bytes(photo("L"), format="PNG"), gray_to_rgb(np.asarray(photo("L"))), 0),
    "transparent.png": (png_bytes(half_transparent(), format="PNG"),
                        np.concatenate([filled(40, 20, RED), filled(40, 20, WHITE)], axis=1), 0),
    "palette-transparent.png": (png_bytes(palette_with_transparency(), format="PNG"),
                                np.concatenate([filled(20, 40, BLUE), filled(20, 40, WHITE)], axis=0), 0),
    "sixteen-bit.png": (png_bytes(PIL.Image.fromarray(SIXTEEN_BIT), format="PNG"),
                        gray_to_rgb(np.uint8(np.round(SIXTEEN_BIT / 257))), 0),
    "cmyk.jpg": (png_bytes(photo("CMYK"), format="JPEG", quality=95), np.asarray(photo()), 4),
    "animated.gif": (animated_gif(), filled(32, 32, (0, 128, 0)), 0),
    "rotated.jpg": (exif_rotated_jpeg(), np.concatenate([filled(32, 32, RED), filled(32, 32, BLUE)], axis=0), 4),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uploads")
    for name, content in {**{n: c for n, (c, _) in REFUSED.items()}, **{n: c for n, (c, *_) in ACCEPTED.items()}}.items():
        (folder / name).write_bytes(content)
    return folder


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_bad_files_get_a_clear_message(client, corpus, name):
    expected = REFUSED[name][1]
    for endpoint, args in (("/predict", (3,)), ("/explain", ("layer4", "predicted class", "Grad-CAM", 0.5))):
        with pytest.raises(Exception, match=expected):
            client.predict(handle_file(str(corpus / name)), *args, api_name=endpoint)


def test_oversized_upload_is_refused(client, tmp_path):
    """Over 10 MB, a picture is refused by its size (Gradio's own limit, 100 MB, is for a ZIP of many)."""
    big = tmp_path / "huge.png"
    big.write_bytes(b"\x89PNG" + bytes(11 * 1024 * 1024))
    with pytest.raises(Exception, match="The file is over 10 MB"):
        client.predict(handle_file(str(big)), 3, api_name="/predict")


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, f"{a.shape} instead of {b.shape}"
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_odd_but_valid_images_decode_to_what_a_viewer_shows(corpus, name):
    _, expected, tolerance = ACCEPTED[name]
    assert mean_difference(np.asarray(to_rgb(load_image(corpus / name))), expected) <= tolerance


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_odd_but_valid_images_are_classified_on_their_true_picture(client, corpus, name):
    label, model_view = client.predict(handle_file(str(corpus / name)), 3, api_name="/predict")
    assert len(label["confidences"]) == 3
    # What the model saw is the expected picture, center-cropped and reduced to 32x32 (shown enlarged).
    _, expected, tolerance = ACCEPTED[name]
    should_see = enlarge(prepare(PIL.Image.fromarray(expected))[0])
    assert mean_difference(np.asarray(PIL.Image.open(model_view).convert("RGB")), should_see) <= tolerance + 0.5


@pytest.mark.parametrize("endpoint, args, message", [
    ("/predict", (0,), "less than minimum"),
    ("/predict", (99,), "greater than maximum"),
    ("/explain", ("layer9", "predicted class", "Grad-CAM", 0.5), "not in the list of choices"),
    ("/explain", ("layer4", "unicorn", "Grad-CAM", 0.5), "not in the list of choices"),
    ("/explain", ("layer4", "predicted class", "Magic-CAM", 0.5), "not in the list of choices"),
    ("/explain", ("layer4", "predicted class", "Grad-CAM", 1.5), "greater than maximum"),
])
def test_out_of_range_api_arguments_are_refused(client, endpoint, args, message):
    with pytest.raises(Exception, match=message):
        client.predict(handle_file(EXAMPLES[0]), *args, api_name=endpoint)


def test_missing_image_is_a_clear_message(client):
    with pytest.raises(Exception, match="Upload an image first"):
        client.predict(None, 3, api_name="/predict")


def test_app_still_answers_correctly_after_the_corpus(client, corpus, app):
    demo, _ = app
    for name in REFUSED:  # throw the whole bad corpus at it once more
        with pytest.raises(Exception):
            client.predict(handle_file(str(corpus / name)), 3, api_name="/predict")
    label, _ = client.predict(handle_file(EXAMPLES[3]), 10, api_name="/predict")
    # The same computation without the server in between.
    predict = next(fn for fn in demo.fns.values() if fn.api_name == "predict").fn
    expected = predict(EXAMPLES[3], 10)[0]
    got = {c["label"]: c["confidence"] for c in label["confidences"]}
    assert got.keys() == expected.keys()
    assert all(abs(got[k] - expected[k]) < 1e-5 for k in got)
