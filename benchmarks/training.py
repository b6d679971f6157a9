"""Training speed: the input pipeline, one training step, GPU throughput (eager and compiled) against the original
project's loop on the same device, and time to an accuracy from a run's history."""

import contextlib
import os
import time

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2

from cifar.training.config import RECIPES, make_config
from cifar.training.data import ArrayDataset, EpochLoader, train_transform
from cifar.engine.predict import to_model_input
from cifar.files import read_json
from cifar.engine.model import ResNet18
from cifar.training.loop import loader_workers, make_optimizer, micro_batch_size, mixed_precision, train_step

from .common import images, rate, report


def original_transform():
    """The original project's per-image pipeline: rotation, cutout, flip, Normalize(0.5) on the CPU."""
    return A.Compose([A.Rotate(limit=15, border_mode=cv2.BORDER_REFLECT_101, p=0.5),
                      A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(16, 16), hole_width_range=(16, 16),
                                      fill=128, p=1.0),
                      A.HorizontalFlip(p=0.5), A.Normalize(mean=(0.5,) * 3, std=(0.5,) * 3), ToTensorV2()], seed=0)


def make_step(recipe, device, channels_last, autocast=contextlib.nullcontext(), compiled=False):
    """A fresh model and optimizer for `recipe`, and a function running one training step on a batch."""
    torch.manual_seed(0)
    model = ResNet18(mean=recipe.mean, std=recipe.std).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, recipe)
    step_model = torch.compile(model) if compiled else model
    micro_batch = micro_batch_size(recipe, device, recipe.batch_size)
    return lambda batch_images, labels: train_step(step_model, optimizer, batch_images, labels, micro_batch,
                                                   recipe.label_smoothing, autocast)


def bench_pipeline():
    """Per-image CPU augmentation, single process: uint8 out (ours) vs float normalized (original)."""
    x = images()
    ours, original = train_transform(RECIPES["full"]), original_transform()
    run = lambda t: (lambda: [t(image=i)["image"] for i in x[:256]])
    report("augmentation pipeline (images/s, 1 process)", rate(run(ours), 256), rate(run(original), 256), "img/s")


def bench_train_step():
    """One SGD step on the CPU including the batch's augmentation: our recipe vs the original loop.

    A minute each: at ~5 s a step, 20 s held 4 steps and the ratio was noise."""
    x, y = images(256), torch.randint(0, 10, (256,))
    device = torch.device("cpu")

    def step_fn(config, transform, channels_last, normalize_on_cpu):
        step = make_step(config, device, channels_last)

        def augment_and_step():
            batch_images = torch.stack([transform(image=i)["image"] for i in x[:config.batch_size]])
            inputs = batch_images if normalize_on_cpu else batch_images.float().div_(255)
            if channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            step(inputs, y[:config.batch_size])
        return augment_and_step

    full = RECIPES["full"]
    # The original model took normalized input; ours normalizes inside, so feed it mean 0 / std 1 here.
    seed_unit = make_config("seed", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    ours = rate(step_fn(full, train_transform(full), True, False), full.batch_size, seconds=60)
    baseline = rate(step_fn(seed_unit, original_transform(), False, True), seed_unit.batch_size, seconds=60)
    report("CPU training (images/s, step + augmentation)", ours, baseline, "img/s")
    whole = make_config("full", micro_batch=full.batch_size)
    report("  ours: micro-batches vs the whole batch at once", ours,
           rate(step_fn(whole, train_transform(whole), True, False), full.batch_size, seconds=60), "img/s")


def bench_gpu(device=None, seconds=10.0, epoch_images=50_000, batch_size=None, compile=True):
    """Training on a GPU: the input pipeline alone, our step on a batch already on the device (eager and
    compiled), the two together over an epoch, and the original project's step on the same device.

    Target (issue #4, one H100): >= 20,000 training images/s end to end, the loader faster than the step.
    `device` and the sizes are parameters so that the test suite can run all of it on a CPU."""
    device = torch.device(device) if device else (torch.device("cuda") if torch.cuda.is_available() else None)
    if device is None:
        print("gpu: no CUDA device here, skipped (the train part measures this CPU)")
        return
    config = make_config("full", **({"batch_size": batch_size} if batch_size else {}))
    x, y = images(epoch_images), np.random.default_rng(1).integers(0, 10, epoch_images)
    workers = loader_workers(config, device)
    loader = EpochLoader(ArrayDataset(x, y, train_transform(config)), config.batch_size, config.seed, workers,
                         pin_memory=device.type == "cuda")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def epoch_rate(step=None, epoch=1):
        """images/s over one epoch of the real loader, running `step` on every batch (or nothing)."""
        started = time.perf_counter()
        for batch_images, labels in loader.epoch(epoch):
            batch_images, labels = to_model_input(batch_images, device), labels.to(device, non_blocking=True)
            if step:
                step(batch_images, labels)
        sync()
        return len(loader) * config.batch_size / (time.perf_counter() - started)

    def resident_rate(step, batch_images, labels):
        return rate(lambda: (step(batch_images, labels), sync()), len(labels), seconds)

    epoch_rate(epoch=0)  # starts the (persistent) workers
    loading = epoch_rate()
    print(f"{f'input pipeline alone ({workers} workers)':<48} {loading:10.0f} img/s")
    resident = to_model_input(torch.from_numpy(x[:config.batch_size].transpose(0, 3, 1, 2)), device)
    labels = torch.from_numpy(y[:config.batch_size]).to(device)
    ours = make_step(config, device, True, mixed_precision(device))
    eager = resident_rate(ours, resident, labels)
    print(f"{'our step, batch on the device (eager)':<48} {eager:10.0f} img/s")
    if compile:
        ours = make_step(config, device, True, mixed_precision(device), compiled=True)
        print(f"{'our step, batch on the device (torch.compile)':<48} "
              f"{resident_rate(ours, resident, labels):10.0f} img/s")
    end_to_end = epoch_rate(ours)
    print(f"{'ours end to end: loader + step, one epoch':<48} {end_to_end:10.0f} img/s  (target >= 20,000 on an H100)")
    report("  loader headroom: pipeline alone vs end to end", loading, end_to_end, "img/s")
    # The original: batch 64, fp32, NCHW; its normalization was on the CPU, so its model gets unit mean/std.
    original = make_config("seed", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    small = min(original.batch_size, config.batch_size)
    baseline = resident_rate(make_step(original, device, False),
                             resident[:small].contiguous(), labels[:small])
    report("our step vs the original's, batch on the device", eager, baseline, "img/s")


def bench_history(run_path, accuracies=(0.87, 0.94)):
    """Time to each of `accuracies` on the test set, and the whole run's time, from a run folder's history.json
    (the original project: 12 epochs to 87%, ~31 s an epoch on a Colab GPU; the GPU target: 94% in 90 s)."""
    history = read_json(os.path.join(run_path, "history.json"))
    elapsed, reached = 0.0, {}
    for epoch in history["epochs"]:
        elapsed += epoch["seconds"]
        for accuracy in accuracies:
            if accuracy not in reached and epoch["test_accuracy"] >= accuracy:
                reached[accuracy] = f"epoch {epoch['epoch']}, {elapsed:.0f} s"
    best = max(e["test_accuracy"] for e in history["epochs"])
    print(f"{os.path.normpath(run_path)} on {history['device']}: {len(history['epochs'])} epochs in {elapsed:.0f} s "
          "(training and per-epoch test evaluation)")
    for accuracy in accuracies:
        print(f"{f'time to {100 * accuracy:.0f}% test accuracy':<48} "
              f"{reached.get(accuracy, f'not reached (best {100 * best:.2f}%)')}")
