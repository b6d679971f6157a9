import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from cifar.training import loop as training
from cifar.training.config import RECIPES, TrainConfig, make_config
from cifar.runs.card import model_card, recipe_text
from cifar.training.finish import finish_run
from cifar.files import STATE_NAME
from cifar.training.loop import micro_batch_size, one_cycle, train, train_step
from tests.conftest import RUN_FILES, synthetic_cifar

def without_timings(history):
    return [{k: v for k, v in e.items() if "second" not in k} for e in history["epochs"]]


def test_history_is_written_every_epoch(tiny_data, tiny_config, tmp_path):
    train(tiny_config, tiny_data, tmp_path, progress=False)
    history = json.loads((tmp_path / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert {"train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr", "seconds"} <= set(history["epochs"][0])
    assert history["config"] == tiny_config.to_dict()
    # The schedule moved once per batch: each epoch ends at the one-cycle lr of the steps taken so far.
    steps = len(tiny_data["train"][1]) // tiny_config.batch_size
    multiplier = one_cycle(tiny_config, tiny_config.epochs * steps)
    assert [e["lr"] for e in history["epochs"]] == pytest.approx(
        [tiny_config.lr * multiplier(steps * e["epoch"]) for e in history["epochs"]])


def test_training_learns_what_generalises(tmp_path):
    # Measured with this data and config: 0.80, 1.00, 0.90, 0.90, 0.99 test accuracy for seeds 0-4 (chance is
    # 0.10). With lr 1e-12, or labels paired with the wrong images, it stays near 0.1.
    data = synthetic_cifar(n_train=160, n_test=100)
    train(make_config(epochs=2, batch_size=16, lr=0.005, workers=0), data, tmp_path, progress=False)
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["epochs"][-1]["test_accuracy"] >= 0.6
    assert history["epochs"][-1]["train_loss"] < history["epochs"][0]["train_loss"]


def test_resume_gives_the_same_history_as_an_uninterrupted_run(tiny_data, tiny_config, tmp_path):
    config = make_config(epochs=3, batch_size=16, lr=0.05, workers=0)
    whole = train(config, tiny_data, tmp_path / "whole", progress=False)
    train(config, tiny_data, tmp_path / "split", progress=False, stop_after_epochs=1)  # "killed" after epoch 1
    resumed = train(config, tiny_data, tmp_path / "split", resume=True, progress=False)
    read = lambda name: json.loads((tmp_path / name / "history.json").read_text())
    assert without_timings(read("split")) == without_timings(read("whole"))
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_resume_starts_from_the_saved_state_and_runs_only_what_is_left(tiny_data, tmp_path, monkeypatch):
    # A CPU run is deterministic, so retraining from scratch would also end with the same history: look
    # at what the resumed run starts from and how many steps it takes.
    config = make_config(epochs=3, batch_size=16, lr=0.05, workers=0)
    train(config, tiny_data, tmp_path, progress=False, stop_after_epochs=1)
    saved = torch.load(tmp_path / STATE_NAME, weights_only=True)
    first_step, steps = {}, []

    def spy(step_model, optimizer, *args, **kwargs):
        if not steps:
            first_step.update(weights=copy.deepcopy(step_model.state_dict()),
                              optimizer=copy.deepcopy(optimizer.state_dict()))
        steps.append(optimizer.param_groups[0]["lr"])
        return train_step(step_model, optimizer, *args, **kwargs)

    monkeypatch.setattr(training, "train_step", spy)
    train(config, tiny_data, tmp_path, resume=True, progress=False)
    steps_per_epoch = len(tiny_data["train"][1]) // config.batch_size
    assert len(steps) == 2 * steps_per_epoch  # epochs 2 and 3 only
    torch.testing.assert_close(first_step["weights"], saved["model"])
    torch.testing.assert_close(first_step["optimizer"], saved["optimizer"])  # momentum buffers included
    assert len(saved["optimizer"]["state"]) == len(list(training.ResNet18().parameters()))
    assert steps[0] == pytest.approx(saved["schedule"]["_last_lr"][0])  # the schedule goes on, not over


def test_an_existing_run_is_not_overwritten(tiny_data, tiny_config, tmp_path):
    train(tiny_config, tiny_data, tmp_path, progress=False, stop_after_epochs=1)
    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny_config, tiny_data, tmp_path, progress=False)


def test_resume_refuses_another_config(tiny_data, tiny_config, tmp_path):
    train(tiny_config, tiny_data, tmp_path, progress=False, stop_after_epochs=1)
    with pytest.raises(ValueError, match="another config"):
        train(make_config(epochs=2, batch_size=8, workers=0), tiny_data, tmp_path, resume=True, progress=False)


def test_finished_run_folder_has_every_artifact(tiny_run):
    assert RUN_FILES <= {p.name for p in tiny_run.iterdir()}
    assert not (tiny_run / STATE_NAME).exists()  # optimizer state is not shipped
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    confusion = np.array(metrics["confusion_matrix"])
    assert confusion.shape == (10, 10) and confusion.sum() == metrics["test_images"]
    assert metrics["test_accuracy_tta"] == pytest.approx(np.trace(confusion) / confusion.sum())
    with np.load(tiny_run / "misclassified.npz") as wrong:
        assert len(wrong["images"]) == metrics["test_images"] - np.trace(confusion)
        assert (wrong["true"] != wrong["predicted"]).all()
        assert ((0 < wrong["confidence"]) & (wrong["confidence"] <= 1)).all()
    card = (tiny_run / "README.md").read_text()
    assert f"{100 * metrics['test_accuracy']:.2f}%" in card
    # No validation split: the temperature is fitted on one half of the test set and reported on the other.
    assert "half of the test set (16 images" in metrics["calibration"]["fitted_on"]
    assert sum(metrics["calibration"]["after"]["reliability"]["count"]) == 16
    assert f"T = {metrics['calibration']['temperature']:.4f}" in card


def test_a_run_with_a_validation_split_reports_it(tmp_path, tiny_data):
    config = make_config(epochs=1, batch_size=16, lr=0.05, workers=0, val_size=16)
    model = train(config, tiny_data, tmp_path, progress=False)
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["epochs"][0]["train_images"] == 64 - 16
    assert 0 <= history["epochs"][0]["val_accuracy"] <= 1
    metrics = finish_run(tmp_path, tiny_data, model, {"command": "pytest"})
    assert set(metrics["val_accuracy_by_tta"]) == {"none", "flip", "flip_translate"}
    assert all((16 * a).is_integer() for a in metrics["val_accuracy_by_tta"].values())  # of 16 images
    # The temperature is fitted on the validation split and reported on the whole test set.
    assert metrics["calibration"]["fitted_on"] == "the validation split (16 images)"
    assert sum(metrics["calibration"]["before"]["reliability"]["count"]) == 32


def test_model_card_says_how_the_hyperparameters_were_chosen(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    history = json.loads((tiny_run / "history.json").read_text())
    whole = model_card(metrics, history, {"command": "train.py", "train_images": 50_000})
    assert "none was chosen by looking at the test set" in whole and "held out" not in whole
    history["config"]["val_size"] = 5000
    held_out = model_card(metrics, history, {"command": "train.py", "train_images": 45_000})
    assert "5,000 training images were held out as a validation split" in held_out


def test_model_card_describes_the_recipe_the_run_used():
    full = recipe_text(make_config("full").to_dict())
    assert "Nesterov" in full and "label smoothing 0.1" in full and "one 8x8 hole" in full and "rotation" not in full
    seed = recipe_text(make_config("seed").to_dict())
    assert "plain SGD" in seed and "constant learning rate 0.01" in seed and "rotation up to 15.0" in seed
    assert "smoothing" not in seed and "reflect-pad" not in seed and "no weight decay" in seed
    assert "cutout" not in recipe_text(make_config("fast").to_dict())  # the short recipe has none
    robust = recipe_text(make_config("robust").to_dict())
    assert robust.startswith("Fine-tuned from the weights of `checkpoints/resnet18-cifar10`")
    assert "AugMix at severity 3" in robust and "cutout" not in robust and "AugMix" not in full


def test_a_fine_tuned_runs_card_says_where_it_started_and_what_its_validation_saw(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    history = json.loads((tiny_run / "history.json").read_text())
    history["config"] = make_config("robust").to_dict()
    card = model_card(metrics, history, {"command": "train.py --recipe robust", "train_images": 45_000})
    assert "fine-tuned from `checkpoints/resnet18-cifar10` on" in card and "trained from scratch" not in card
    assert "the first 250 of them were also measured under every CIFAR-10-C corruption" in card
    assert "its clean accuracy flatters the model" in card  # the start saw the validation images


def test_a_fine_tuned_run_is_calibrated_on_half_the_test_set_not_on_the_split_its_start_saw(tiny_robust_run):
    calibration = json.loads((tiny_robust_run / "metrics.json").read_text())["calibration"]
    assert calibration["fitted_on"].startswith("a random half of the test set")
    assert calibration["reported_on"].startswith("the other half")


def test_one_cycle_shape():
    multiplier = one_cycle(make_config(warmup=0.25), total_steps=100)
    assert multiplier(0) == pytest.approx(0.1)
    assert multiplier(25) == pytest.approx(1.0)
    assert multiplier(100) == 0.0
    assert one_cycle(RECIPES["seed"], 100)(50) == 1.0  # the seed recipe keeps lr constant


def test_seed_recipe_is_the_original_project():
    seed = RECIPES["seed"]
    assert (seed.batch_size, seed.lr, seed.epochs, seed.momentum, seed.mean) == (64, 0.01, 25, 0.0, (0.5, 0.5, 0.5))
    assert seed.rotate > 0 and seed.cutout > 0


def test_config_round_trips_through_json():
    config = make_config(label_smoothing=0.2)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "-1"], "--epochs must be >= 1"),
    (["--data-dir", "/nonexistent/cifar"], "does not exist"),
    (["--out", "/proc/forbidden/run"], "cannot write to run folder"),
    (["--push-to-hub", "me/model"], "needs a Hugging Face token"),
    (["--push-only"], "needs --push-to-hub"),
])
def test_bad_arguments_fail_fast_with_a_clear_message(argv, message):
    result = subprocess.run([sys.executable, "train.py", *argv], capture_output=True, text=True, timeout=300,
                            env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_train_cli_end_to_end(tmp_path, tiny_data_dir):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "train.py", "--data-dir", str(tiny_data_dir), "--out", str(out),
                             "--epochs", "1", "--batch-size", "16", "--tta", "flip_translate"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "with flip_translate TTA" in result.stdout
    assert json.loads((out / "metrics.json").read_text())["tta"] == "flip_translate"
    assert RUN_FILES <= {p.name for p in out.iterdir()}
    card = (out / "README.md").read_text()
    assert "--data-dir" in card  # the card says how to reproduce the run ...
    assert "| trained on | CPU (" in card and f"{os.cpu_count()} cores)" in card  # ... and where it trained
    assert "| images per forward (micro-batch) | 16: gradients accumulate to batches of 16 |" in card


def test_micro_batches_sum_to_the_whole_batch_gradient():
    # No BatchNorm here, so accumulating 3 uneven micro-batches must equal one pass over all 10 images.
    def step(micro_batch):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 10))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
        images, labels = torch.rand(10, 3, 2, 2), torch.arange(10)
        loss_sum, correct = train_step(model, optimizer, images, labels, micro_batch, label_smoothing=0.1)
        return model.state_dict(), loss_sum.item(), correct.item()

    whole, accumulated = step(10), step(4)
    for name, tensor in whole[0].items():
        torch.testing.assert_close(accumulated[0][name], tensor)
    assert accumulated[1] == pytest.approx(whole[1]) and accumulated[2] == whole[2]


def test_micro_batch_defaults_to_64_on_cpu_and_the_whole_batch_on_gpu():
    config = make_config()
    assert micro_batch_size(config, torch.device("cpu"), 256) == 64
    assert micro_batch_size(config, torch.device("cuda"), 256) == 256
    assert micro_batch_size(config, torch.device("cpu"), 16) == 16
    assert micro_batch_size(make_config(micro_batch=32), torch.device("cuda"), 256) == 32


def robust_config(tiny_run, **overrides):
    """The robust recipe on tiny data: AugMix, fine-tuned from tiny_run, validation measured under corruptions."""
    return make_config("robust", **{"epochs": 2, "batch_size": 16, "workers": 0, "val_size": 16,
                                    "val_corruptions": 3, "init": str(tiny_run), **overrides})


def test_fine_tuning_starts_from_the_runs_weights(tiny_data, tiny_run, tmp_path):
    from cifar.engine.model import ResNet18

    start = train(robust_config(tiny_run), tiny_data, tmp_path, progress=False, stop_after_epochs=0)
    for name, value in ResNet18.from_pretrained(str(tiny_run)).state_dict().items():
        torch.testing.assert_close(start.state_dict()[name], value)
    with pytest.raises(ValueError, match="val_corruptions \\(3\\) needs that many validation images"):
        train(robust_config(tiny_run, val_size=2), tiny_data, tmp_path / "other", progress=False)


def test_the_robust_recipe_resumes_to_the_uninterrupted_result(tiny_data, tiny_run, tmp_path):
    """AugMix draws from the batch's key like the other augmentations, so a resumed run ends where a whole one does;
    after each epoch the validation images are measured under every corruption made here, as the benchmark does."""
    from cifar.engine.corruptions import every_corruption
    from cifar.dataset import split_validation
    from cifar.engine.predict import predict_arrays

    config = robust_config(tiny_run)
    whole = train(config, tiny_data, tmp_path / "whole", progress=False)
    train(config, tiny_data, tmp_path / "split", progress=False, stop_after_epochs=1)
    train(config, tiny_data, tmp_path / "split", resume=True, progress=False)
    read = lambda name: json.loads((tmp_path / name / "history.json").read_text())
    assert without_timings(read("split")) == without_timings(read("whole"))
    _, (x_val, y_val) = split_validation(*tiny_data["train"], config.val_size, config.seed)
    x, y = every_corruption(x_val[:3], y_val[:3], config.seed)
    assert len(x) == 12 * 5 * 3  # the twelve corruptions made here, five severities each
    accuracy = float((predict_arrays(whole, x)[0].argmax(1) == y).mean())
    assert read("whole")["epochs"][-1]["val_corrupted_accuracy"] == pytest.approx(accuracy)
