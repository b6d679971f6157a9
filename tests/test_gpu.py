"""The GPU path, on a GPU: `pytest -m gpu` (skipped without CUDA; benchmarks/gpu_proof.sh runs it with the benchmarks
and the records). What only a GPU runs: bf16 autocast, channels_last on CUDA kernels, torch.compile, DataLoader
workers feeding pinned memory, TF32 convolutions; each result is compared with the CPU's where one exists.

Tolerances: CUDA convolutions run in TF32 by default (10-bit mantissa, as the product runs them), so a logit differs
from the CPU's by up to about 1e-2 and a heatmap scaled to [0, 1] by a few 1e-3 on average. Each check prints what it
measured, so a failing run on a lent GPU still brings its numbers back.

GPU_TESTS_DEVICE=cpu runs these same tests on the CPU (against itself): a rehearsal of the test code before a GPU's
few minutes are spent on it. Without CUDA and without that variable, every test here is skipped.
"""

import os
import json
import sys
import urllib.request

import numpy as np
import PIL.Image
import pytest
import torch

from cifar.training.config import make_config
from cifar.engine.predict import predict_arrays, to_model_input
from cifar.engine.faithfulness import road
from cifar.engine.cam import METHODS
from cifar.engine.model import ResNet18
from cifar.training.loop import make_optimizer, micro_batch_size, mixed_precision, train, train_step

from .conftest import EXAMPLES, synthetic_cifar

pytestmark = pytest.mark.gpu

REHEARSAL = os.environ.get("GPU_TESTS_DEVICE") == "cpu"


@pytest.fixture(scope="module")
def device():
    if REHEARSAL:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (GPU_TESTS_DEVICE=cpu rehearses these tests on the CPU)")
    return torch.device("cuda")


@pytest.fixture(scope="module")
def trained_model():
    """A model that has learned the synthetic classes (30 steps at lr 0.01: every test image right, logits up to about
    10; at lr 0.05 they reach 1e5): its predictions are far from ties, so the CPU and the GPU should agree on every
    one, and its heatmaps are not noise."""
    torch.manual_seed(0)
    model = ResNet18()
    data = synthetic_cifar(n_train=128)
    x, y = model_input(data["train"][0]), torch.from_numpy(data["train"][1])
    optimizer = make_optimizer(model, make_config(lr=0.01))
    for _ in range(30):
        train_step(model, optimizer, x, y, 128, 0.0)
    return model.eval()


def model_input(x: np.ndarray, device="cpu", channels_last=False) -> torch.Tensor:
    """uint8 NHWC arrays as the model takes them: float [0, 1] NCHW on `device`."""
    return to_model_input(torch.from_numpy(x).permute(0, 3, 1, 2), device, channels_last)


def images(n=16, seed=1) -> torch.Tensor:
    """Test images of the synthetic classes, as the model takes them, on the CPU."""
    return model_input(synthetic_cifar(n_test=n, seed=seed)["test"][0])


def step_losses(device, compiled: bool, steps=8) -> list:
    """Losses of `steps` training steps on one fixed batch, from the same seeded start: bf16 autocast on CUDA,
    channels_last, the whole batch at once, as train() runs a GPU step."""
    torch.manual_seed(0)
    config = make_config("full", lr=0.02)  # one batch again and again: the recipe's peak 0.2 would diverge on it
    model = ResNet18().to(device, memory_format=torch.channels_last)
    optimizer = make_optimizer(model, config)
    step_model = torch.compile(model) if compiled else model
    data = synthetic_cifar(n_train=256)["train"]
    x = model_input(data[0], device, channels_last=True)
    y = torch.from_numpy(data[1]).to(device)
    micro_batch = micro_batch_size(config, device, len(y))
    losses = []
    for _ in range(steps):
        loss_sum, _ = train_step(step_model, optimizer, x, y, micro_batch, config.label_smoothing, mixed_precision(device))
        losses.append(loss_sum.item() / len(y))
    assert model.conv1.weight.dtype == torch.float32  # autocast computes in bf16; the weights stay fp32
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    return losses


def test_a_bf16_channels_last_step_learns(device):
    losses = step_losses(device, compiled=False)
    print("bf16 eager step losses", [round(v, 4) for v in losses])
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]  # eight steps on one batch of ten colours: it learns them
    if device.type == "cuda":
        with mixed_precision(device):
            assert ResNet18().to(device)(torch.rand(2, 3, 32, 32, device=device)).dtype == torch.bfloat16


def test_a_compiled_step_follows_the_eager_step(device):
    eager, compiled = step_losses(device, compiled=False), step_losses(device, compiled=True)
    print("eager", [round(v, 4) for v in eager], "\ncompiled", [round(v, 4) for v in compiled])
    # Other kernels, other rounding (bf16 on a GPU): the same first steps to a few percent, not bit for bit; later steps
    # on one repeated batch drift apart by chance, so the rest is only asked to learn as well.
    np.testing.assert_allclose(compiled[:3], eager[:3], rtol=0.05)
    assert compiled[-1] < 0.5 * compiled[0]


def test_a_short_run_and_its_resume_on_the_gpu(device, tmp_path):
    """train() as train.py runs it on this device: DataLoader workers (the GPU default) into pinned memory, bf16, and
    an interrupted run resumed from its saved state ends where an uninterrupted one does (to the GPU's
    nondeterminism: cuDNN's autotuned kernels do not promise bit-equal sums)."""
    data = synthetic_cifar(n_train=256, n_test=64)
    config = make_config(epochs=3, batch_size=32, lr=0.01)  # a calm run: the two should not drift apart by chaos
    whole = train(config, data, tmp_path / "whole", device=device, progress=False)
    train(config, data, tmp_path / "split", device=device, progress=False, stop_after_epochs=1)
    resumed = train(config, data, tmp_path / "split", device=device, resume=True, progress=False)
    histories = [json.loads((tmp_path / name / "history.json").read_text()) for name in ("whole", "split")]
    for name, history in zip(("whole", "split"), histories):
        print(name, [(e["train_loss"], e["test_accuracy"], e["train_images_per_second"]) for e in history["epochs"]])
    if device.type == "cuda":
        assert histories[0]["device"] == torch.cuda.get_device_name(device)
    assert [len(h["epochs"]) for h in histories] == [3, 3]
    for a, b in zip(*(h["epochs"] for h in histories)):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.02)
        assert abs(b["test_accuracy"] - a["test_accuracy"]) <= 2 / 64
    assert histories[0]["epochs"][-1]["train_loss"] < 0.8 * histories[0]["epochs"][0]["train_loss"]  # it learns
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert a.device.type == device.type
        if a.is_floating_point():
            torch.testing.assert_close(a, b, atol=0.05, rtol=0.05)


def test_evaluation_on_the_gpu_equals_the_cpu(device, trained_model):
    x = synthetic_cifar(n_test=512, seed=2)["test"][0]
    on_cpu = predict_arrays(trained_model, x, "flip_translate")
    on_device = predict_arrays(trained_model.to(device), x, "flip_translate", device=device)
    trained_model.cpu()
    difference = np.abs(on_device - on_cpu).max()
    print(f"evaluation: largest logit difference {difference:.2e} (logits up to {np.abs(on_cpu).max():.1f})")
    assert on_device.shape == on_cpu.shape == (6, 512, 10)
    assert np.abs(on_cpu).max() < 100  # a sane model: with huge logits any difference would pass
    assert difference < 2e-2 * max(1.0, np.abs(on_cpu).max())
    assert (on_device.mean(0).argmax(1) == on_cpu.mean(0).argmax(1)).all()


@pytest.mark.parametrize("method", METHODS)
def test_every_cam_method_and_road_on_the_gpu_equal_the_cpu(device, trained_model, method):
    batch = images(8)
    layers = ("layer4", "layer3", "layer2")
    cpu_cams, cpu_logits = METHODS[method](trained_model, layers)(batch)
    model = trained_model.clone().to(device)
    device_cams, device_logits = METHODS[method](model, layers)(batch)
    assert device_logits.device.type == device.type
    difference = np.abs(device_cams - cpu_cams)
    print(f"{method}: heatmap difference mean {difference.mean():.2e}, max {difference.max():.2e}")
    assert difference.mean() < 5e-3 and difference.max() < 0.1
    targets = cpu_logits.argmax(1)
    assert (device_logits.argmax(1).cpu() == targets).all()
    cpu_road, device_road = road(trained_model, batch, cpu_cams[:, 0], targets), road(model, batch, cpu_cams[:, 0], targets)
    print(f"{method}: ROAD difference {np.abs(device_road.score - cpu_road.score).max():.2e}")
    np.testing.assert_allclose(device_road.score, cpu_road.score, atol=2e-3)


def test_the_app_handlers_on_the_gpu_answer_as_on_the_cpu(device, tiny_run):
    from cifar.page.served import ServedModels
    from cifar.page.tabs.predict import PredictTab
    from cifar.runs.folder import load_run

    on_cpu, on_device = (PredictTab(ServedModels.load(load_run(str(tiny_run), where))) for where in ("cpu", device))
    assert next(on_device.models.first.explainer.model.parameters()).device.type == device.type
    for image in EXAMPLES[:3]:
        (cpu_label, _), (device_label, _) = on_cpu.predict(image, 10), on_device.predict(image, 10)
        assert cpu_label.keys() == device_label.keys()
        np.testing.assert_allclose([device_label[k] for k in cpu_label], list(cpu_label.values()), atol=1e-3)
        for method in ("Grad-CAM", "Score-CAM"):
            cpu_heatmap, device_heatmap = (np.asarray(PIL.Image.open(d.explain(image, "layer4", "predicted class", method)[0]))
                                           .astype(int) for d in (on_cpu, on_device))
            assert np.abs(cpu_heatmap - device_heatmap).mean() < 1  # grey levels of 255


def test_the_app_serves_its_pages_answers_from_the_gpu(device, tiny_run):
    """`python app.py --device cuda`, as a user starts it on a GPU machine: the page names the GPU, and a
    prediction and a heatmap come back through the API."""
    from gradio_client import Client, handle_file

    from benchmarks.common import served
    from cifar.device import device_name

    with served([sys.executable, "app.py", "--model", str(tiny_run), "--device", device.type]) as (url, seconds):
        print(f"app.py on {device.type}: answered after {seconds:.1f} s")
        client = Client(url, verbose=False)
        label, _ = client.predict(handle_file(EXAMPLES[0]), 3, api_name="/predict")
        assert len(label["confidences"]) == 3
        heatmap, strip, _ = client.predict(handle_file(EXAMPLES[0]), "layer4", "predicted class", "Grad-CAM", 0.5,
                                           api_name="/explain")
        assert np.asarray(PIL.Image.open(heatmap)).shape[:2] == (256, 256) and len(strip) == 4
        with urllib.request.urlopen(url + "config", timeout=60) as page:
            assert f"Computing on: **{device_name(device)}**" in page.read().decode()
