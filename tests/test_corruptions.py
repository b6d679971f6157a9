"""The CIFAR-10-C corruptions made here (#24): each against what the authors' libraries give (Pillow, scikit-image) or
its own definition, seeded, severity 0 the identity; and the benchmark command on a run."""

import io
import json
import shutil
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import skimage.color
import skimage.filters

from cifar.engine.corruptions import BENCHMARK, CORRUPTIONS, MISSING, SEVERITIES, corrupt
from cifar.runs.folder import load_run
from tests.conftest import ROOT, TEST_SET, needs_test_set, npz_folder, synthetic_cifar

PICTURES = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_severity_zero_is_the_picture_and_every_severity_is_seeded(name):
    np.testing.assert_array_equal(corrupt(PICTURES, name, 0), PICTURES)
    for severity in (1, 5):
        once, again = corrupt(PICTURES, name, severity, seed=3), corrupt(PICTURES, name, severity, seed=3)
        assert once.dtype == np.uint8 and once.shape == PICTURES.shape
        np.testing.assert_array_equal(once, again)
        assert (once != PICTURES).any()  # it does corrupt


def test_the_benchmark_is_the_papers_fifteen_less_the_three_that_cannot_be_made_here():
    assert len(BENCHMARK) == 15 and set(MISSING) == {"motion_blur", "snow", "frost"}
    assert set(BENCHMARK) - set(MISSING) <= set(CORRUPTIONS) and len(CORRUPTIONS) == 16
    for name in MISSING:
        with pytest.raises(ValueError, match=f"cannot make {name}"):
            corrupt(PICTURES, name, 1)


@pytest.mark.parametrize("severity, quality", zip(SEVERITIES, [80, 65, 58, 50, 40]))
def test_jpeg_is_pillows_at_the_authors_quality(severity, quality):
    for picture, corrupted in zip(PICTURES, corrupt(PICTURES, "jpeg_compression", severity)):
        buffer = io.BytesIO()
        PIL.Image.fromarray(picture).save(buffer, "JPEG", quality=quality)
        np.testing.assert_array_equal(corrupted, np.asarray(PIL.Image.open(buffer)))


@pytest.mark.parametrize("severity, side", zip(SEVERITIES, [30, 28, 27, 24, 20]))
def test_pixelate_is_a_box_resize_down_and_back(severity, side):
    for picture, corrupted in zip(PICTURES, corrupt(PICTURES, "pixelate", severity)):
        small = PIL.Image.fromarray(picture).resize((side, side), PIL.Image.BOX)
        np.testing.assert_array_equal(corrupted, np.asarray(small.resize((32, 32), PIL.Image.BOX)))


@pytest.mark.parametrize("severity, sigma", zip(SEVERITIES, [.4, .6, .7, .8, 1]))
def test_gaussian_blur_is_scikit_images(severity, sigma):
    expected = [np.uint8(np.clip(skimage.filters.gaussian(p / 255., sigma=sigma, channel_axis=-1), 0, 1) * 255)
                for p in PICTURES]
    difference = np.abs(corrupt(PICTURES, "gaussian_blur", severity).astype(int) - np.stack(expected))
    assert difference.max() <= 1  # float rounding at the truncation to uint8


@pytest.mark.parametrize("name, channel, change", [
    ("brightness", 2, [.05, .1, .15, .2, .3]), ("saturate", 1, [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)])])
def test_brightness_and_saturation_move_scikit_images_hsv(name, channel, change):
    for severity, c in zip(SEVERITIES, change):
        scale, shift = (1, c) if name == "brightness" else c
        expected = []
        for picture in PICTURES:
            hsv = skimage.color.rgb2hsv(picture / 255.)
            hsv[..., channel] = np.clip(hsv[..., channel] * scale + shift, 0, 1)
            expected.append(np.uint8(np.clip(skimage.color.hsv2rgb(hsv), 0, 1) * 255))
        assert np.abs(corrupt(PICTURES, name, severity).astype(int) - np.stack(expected)).max() <= 1


def test_contrast_pulls_each_channel_towards_its_mean():
    for severity, c in zip(SEVERITIES, [.75, .5, .4, .3, .15]):
        x = PICTURES / 255.
        means = x.mean((1, 2), keepdims=True)
        np.testing.assert_array_equal(corrupt(PICTURES, "contrast", severity),
                                      np.uint8(np.clip((x - means) * c + means, 0, 1) * 255))


def test_noise_has_the_authors_strength():
    grey = np.full((200, 32, 32, 3), 128, np.uint8)  # far from 0 and 255: nothing is clipped
    for severity, sigma in zip(SEVERITIES, [0.04, 0.06, .08, .09, .10]):
        noise = corrupt(grey, "gaussian_noise", severity).astype(float) - 128
        assert noise.std() == pytest.approx(255 * sigma, rel=0.02)
    for severity, amount in zip(SEVERITIES, [.01, .02, .03, .05, .07]):
        flipped = np.isin(corrupt(grey, "impulse_noise", severity), (0, 255)).mean()
        assert flipped == pytest.approx(amount, rel=0.05)


def test_the_benchmark_command_writes_its_table_into_the_run(tiny_run, tmp_path):
    run_dir = shutil.copytree(tiny_run, tmp_path / "run")
    data_dir = npz_folder(tmp_path / "data", {"test": synthetic_cifar(n_test=20)["test"]})
    command = [sys.executable, "-m", "cifar.measure.corruption_benchmark", str(run_dir), "--data-dir", str(data_dir)]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=600)
    value = json.loads((run_dir / "metrics.json").read_text())["corruptions"]
    assert set(value["accuracy"]) == set(CORRUPTIONS) and all(len(a) == 5 for a in value["accuracy"].values())
    assert value["images"] == 20 and set(value["missing"]) == set(MISSING)  # at most 100 of each class: all 20
    made = [name for name in BENCHMARK if name in CORRUPTIONS]
    assert value["mean"] == pytest.approx(np.mean([value["accuracy"][name] for name in made]), abs=1e-4)
    assert "## Corrupted pictures (CIFAR-10-C)" in (run_dir / "README.md").read_text()
    assert (run_dir / "corruptions.png").is_file()
    # Against itself, every corruption error is 100%.
    subprocess.run(command + ["--reference", str(run_dir)], cwd=ROOT, check=True, capture_output=True, timeout=600)
    relative = json.loads((run_dir / "metrics.json").read_text())["corruptions"]["relative_to"]
    assert relative["mean"] == 1.0 and set(relative["per_corruption"].values()) == {1.0}


@needs_test_set
@pytest.mark.parametrize("name", ["resnet18-cifar10", "resnet18-cifar10-robust"])
def test_the_bundled_runs_table_is_what_the_benchmark_gives(name):
    """JPEG at its strongest and the clean pictures, recomputed on the same 1,000 test images."""
    from cifar.measure.corruption_benchmark import accuracy, subset
    from cifar.dataset import read_test_set

    run = load_run(str(ROOT / "checkpoints" / name))
    value = run.metrics["corruptions"]
    images, labels = read_test_set(TEST_SET)
    chosen = subset(labels)
    assert value["images"] == len(chosen) == 1000
    assert accuracy(run.model, images[chosen], labels[chosen]) == pytest.approx(value["clean"], abs=1e-3)
    jpeg = accuracy(run.model, corrupt(images[chosen], "jpeg_compression", 5), labels[chosen])
    assert jpeg == pytest.approx(value["accuracy"]["jpeg_compression"][4], abs=1e-3)


def test_the_explorer_shows_every_severity_each_models_prediction_and_how_far_its_heatmap_moved(client, tiny_run,
                                                                                                tiny_robust_run):
    from gradio_client import handle_file
    from scipy.stats import spearmanr

    from cifar.engine.explainer import Explainer
    from cifar.engine.pictures import load_image, prepare
    from tests.conftest import EXAMPLES, MODELS

    gallery, text, numbers = client.predict(handle_file(EXAMPLES[3]), "contrast", "layer3", "Grad-CAM", 0.5,
                                            api_name="/corruption")
    assert len(gallery) == 6 * 3 and gallery[0]["caption"] == "severity 0" and list(numbers) == list(MODELS)
    small, _ = prepare(load_image(EXAMPLES[3]))
    pictures = [small] + [corrupt(small[None], "contrast", s)[0] for s in SEVERITIES]
    for row, (name, run_dir) in enumerate(zip(MODELS, (tiny_run, tiny_robust_run)), start=1):
        run = load_run(str(run_dir))
        explainer = Explainer(run.model)
        temperature = run.metrics["calibration"]["temperature"]
        chances = [explainer.probabilities(p, run.metrics["tta"], temperature) for p in pictures]
        assert numbers[name]["predicted"] == [run.classes[c.argmax()] for c in chances]
        assert numbers[name]["confidence"] == pytest.approx([float(c.max()) for c in chances], abs=1e-5)
        assert gallery[6 * row]["caption"].startswith(f"{name}: {run.classes[chances[0].argmax()]}")
        clean_class = int(chances[0].argmax())
        maps = [explainer.heatmaps(p[None], ("layer3",), "Grad-CAM", clean_class)[0][0, 0] for p in pictures]
        assert maps[0].std() > 0  # the clean heatmap has an order to keep
        for s, heatmap in enumerate(maps):
            if heatmap.std() > 0:
                expected = spearmanr(maps[0].ravel(), heatmap.ravel()).statistic
                assert numbers[name]["rank_correlation"][s] == pytest.approx(expected, abs=1e-4)  # batched vs one by one
        assert numbers[name]["rank_correlation"][0] == pytest.approx(1.0)
        assert f"**{name}** keeps **{run.classes[clean_class]}**" in text
