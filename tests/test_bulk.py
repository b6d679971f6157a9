"""A user's pictures in bulk (cifar/engine/uploads.py, the Your pictures tab): files and ZIPs read safely, every file
that cannot be used refused by name while the others are answered as the single-picture path answers them."""

import csv
import io
import json
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from gradio_client import handle_file

from cifar.engine.uploads import MOST_PICTURES, read_uploads
from cifar.page.tabs.bulk import BulkTab
from cifar.page.tabs.predict import PredictTab
from tests.conftest import EXAMPLES, ROOT

BOMB_BYTES = 50_000_000  # expands 1000x: over the 10 MB a picture may be


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.fromarray(np.random.default_rng(seed).integers(0, 256, (32, 32, 3), np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def zip_of_200(path: Path) -> Path:
    """197 pictures (in a folder, as a user zips one), a broken picture, a ZIP-bomb member and a name with ../."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for number in range(197):
            archive.writestr(f"holiday/{number:03d}.png", png(number))
        archive.writestr("holiday/broken.png", png(0)[:60])
        archive.writestr("bomb.png", b"\0" * BOMB_BYTES)
        archive.writestr("../../etc/escape.png", png(1))
    return path


def test_a_zip_of_200_members_is_answered_with_197_rows_and_three_named_refusals(app, client, tmp_path):
    upload = zip_of_200(tmp_path / "photos.zip")
    table, gallery, refused, summary = client.predict([handle_file(str(upload)), handle_file(EXAMPLES[3])],
                                                      "Grad-CAM", "layer4", "most confident first",
                                                      api_name="/bulk")
    rows = table["data"]
    assert len(rows) == 198 and len(gallery) == 198  # the ZIP's 197 pictures and the cat beside it
    assert {row[0] for row in rows} == {f"photos.zip/holiday/{n:03d}.png" for n in range(197)} | {"cat.png"}
    assert [row[0] for row in refused["data"]] == ["photos.zip/holiday/broken.png", "photos.zip/bomb.png",
                                                   "photos.zip/../../etc/escape.png"]
    reasons = [row[1] for row in refused["data"]]
    assert "truncated or corrupt" in reasons[0]
    assert reasons[1].startswith("expands to 50 MB") and "at most 10 MB" in reasons[1]
    assert "leaves the ZIP's folder" in reasons[2]
    assert summary.startswith("198 pictures answered, 3 files refused")
    confidences = [row[2] for row in rows]
    assert confidences == sorted(confidences, reverse=True)

    # Each row is what the single-picture path says of that picture: /predict's calibrated top two, /faithfulness's
    # ROAD of the heatmap of that class.
    single = PredictTab(app[0].served_models)
    cat = next(row for row in rows if row[0] == "cat.png")
    label, _ = single.predict(EXAMPLES[3], 10)
    (first, p_first), (second, p_second) = sorted(label.items(), key=lambda item: -item[1])[:2]
    assert cat[1:5] == [first, pytest.approx(p_first, abs=1e-4), second, pytest.approx(p_second, abs=1e-4)]
    _, road = single.faithfulness(EXAMPLES[3], "layer4", first, "Grad-CAM")
    assert cat[5] == pytest.approx(road["layer4"], abs=1e-3)


def test_the_export_is_the_test_set_tabs_zip_and_nothing_outlives_the_request(app, client, tmp_path):
    before = set(Path(tempfile.gettempdir()).glob("cifar-bulk-*"))
    with zipfile.ZipFile(tmp_path / "few.zip", "w") as archive:
        for number in range(3):
            archive.writestr(f"{number}.png", png(number))
    exported = client.predict([handle_file(str(tmp_path / "few.zip")), handle_file(EXAMPLES[0]),
                               handle_file(str(ROOT / "README.md"))], "LayerCAM", "layer2", "least confident first",
                              api_name="/bulk_export")
    with zipfile.ZipFile(exported) as archive:
        names = set(archive.namelist())
        rows = list(csv.DictReader(io.StringIO(archive.read("index.csv").decode())))
        manifest = json.loads(archive.read("manifest.json"))
    assert names == {f"{kind}/{n:04d}.{ext}" for n in range(4) for kind, ext in
                     (("images", "png"), ("heatmaps", "png"), ("heatmaps", "npy"))} | {"index.csv", "manifest.json"}
    assert [row["name"] for row in rows] == ["0000", "0001", "0002", "0003"]
    assert {row["file"] for row in rows} == {"few.zip/0.png", "few.zip/1.png", "few.zip/2.png", "airplane.png"}
    assert [float(row["confidence"]) for row in rows] == sorted(float(row["confidence"]) for row in rows)
    assert manifest["method"] == "LayerCAM" and manifest["layer"] == "layer2"
    assert manifest["refused"] == [{"file": "README.md", "reason": "This file is not an image we can read (PNG, JPEG, "
                                                                    "GIF, WebP, BMP or TIFF)."}]
    # Nothing uploaded is kept or served to anyone else: the request's folder is gone, and what comes back is named
    # by its content, never by a user's file name.
    assert set(Path(tempfile.gettempdir()).glob("cifar-bulk-*")) == before
    assert "few" not in Path(exported).name and "airplane" not in Path(exported).name
    _, gallery, _, _ = client.predict([handle_file(EXAMPLES[1])], api_name="/bulk")
    assert [item["caption"].split(":")[0] for item in gallery] == ["automobile.png"]  # this session's picture alone


def test_a_zip_is_read_without_trusting_it(tmp_path):
    """Its table of contents is checked before anything is decompressed, and each member is read with a bound."""
    lying = tmp_path / "lying.zip"
    with zipfile.ZipFile(lying, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("small.png", b"\0" * 20_000_000)
        archive.writestr("fine.png", png(3))
    # A bomb that says it is small: its local header and its central directory entry claim 1,000 bytes.
    data = bytearray(lying.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(signature)
        data[at + offset:at + offset + 4] = struct.pack("<I", 1000)
    lying.write_bytes(bytes(data))
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as archive:
        for number in range(MOST_PICTURES + 1):
            archive.writestr(f"{number}.png", b"x")
    odd = tmp_path / "odd.zip"
    with zipfile.ZipFile(odd, "w") as archive:
        archive.writestr("/etc/absolute.png", png(4))
        archive.writestr("C:/windows.png", png(5))
        archive.writestr("inner.zip", b"PK")
        archive.writestr("__MACOSX/._cat.png", b"resource fork")
        archive.writestr("notes.txt", b"hello")
        archive.writestr("ok.png", png(6))
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")

    pictures, refusals = read_uploads([str(lying), str(many), str(odd), str(empty)])
    assert [picture.name for picture in pictures] == ["lying.zip/fine.png", "odd.zip/ok.png"]
    reasons = {refusal.name: refusal.reason for refusal in refusals}
    assert reasons["lying.zip/small.png"].startswith("cannot be read from the ZIP")  # cut off at its claimed size
    assert reasons["many.zip"] == f"holds {MOST_PICTURES + 1} files; at most {MOST_PICTURES} are answered at once"
    for name in ("/etc/absolute.png", "C:/windows.png"):
        assert "leaves the ZIP's folder" in reasons[f"odd.zip/{name}"]
    assert reasons["odd.zip/inner.zip"] == "a ZIP inside a ZIP: upload it on its own"
    assert "not an image we can read" in reasons["odd.zip/notes.txt"]
    assert reasons["empty.png"] == "The file is empty."
    assert "odd.zip/__MACOSX/._cat.png" not in reasons  # a Mac's resource fork: skipped without a word


def test_bad_requests_get_a_message(app):
    import gradio as gr

    tab = BulkTab(app[0].served_models)
    with pytest.raises(gr.Error, match="Upload some pictures first"):
        tab.bulk([])
    with pytest.raises(gr.Error, match="Score-CAM takes seconds a picture.*at most 10"):
        tab.bulk([EXAMPLES[0]] * 11, "Score-CAM")
    rows, gallery, refused, summary = tab.bulk(["/nonexistent/x.png"])
    assert rows == [] and refused == [["x.png", "The file is empty."]]
