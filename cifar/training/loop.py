"""The training loop: one function, `train`, from a config and arrays to a finished run folder.

Resumable by construction: everything the next epoch depends on (weights, optimizer, schedule,
history, and the data order, which is a function of (seed, epoch)) is saved atomically at the end of
every epoch, so an interrupted run resumed with `resume=True` produces the same history.
"""

import json
import os
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from cifar.training.config import TrainConfig
from cifar.engine.corruptions import every_corruption
from cifar.training.data import ArrayDataset, EpochLoader, train_transform
from cifar.dataset import split_validation
from cifar.device import device_name, pick_device
from cifar.training.evaluate import loss_and_accuracy
from cifar.engine.predict import predict_arrays, to_model_input
from cifar.files import STATE_NAME, atomic_write, save_json
from cifar.engine.model import ResNet18


def loader_workers(config: TrainConfig, device: torch.device) -> int:
    """DataLoader worker processes. A GPU needs 8 to be fed; on a CPU the augmentations run ~100x faster
    than the model, so workers would only take its cores."""
    if config.workers >= 0:
        return config.workers
    return min(8, os.cpu_count() or 1) if device.type == "cuda" else 0


def mixed_precision(device: torch.device):
    """bf16 autocast: fast on GPUs, ~13x slower than fp32 on CPUs, so CUDA only."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


def distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world size). Under `torchrun`, joins the process group: NCCL on GPUs, gloo on CPUs."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def is_main_process() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def make_optimizer(model, config: TrainConfig) -> torch.optim.SGD:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        is_norm_or_bias = param.ndim <= 1
        (no_decay if is_norm_or_bias and not config.decay_norm_and_bias else decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum,
                           nesterov=config.nesterov and config.momentum > 0)


def one_cycle(config: TrainConfig, total_steps: int):
    """lr multiplier per step: linear warm-up from 0.1 to 1, then linear decay to 0.

    warmup=0 means a constant learning rate (the seed recipe's plain SGD)."""
    if config.warmup <= 0:
        return lambda step: 1.0
    peak = max(1, round(config.warmup * total_steps))

    def multiplier(step: int) -> float:
        if step < peak:
            return 0.1 + 0.9 * step / peak
        return max(0.0, (total_steps - step) / max(1, total_steps - peak))

    return multiplier


CPU_MICRO_BATCH = 64  # see TrainConfig.micro_batch


def micro_batch_size(config: TrainConfig, device: torch.device, batch: int) -> int:
    if config.micro_batch:
        return min(config.micro_batch, batch)
    return min(CPU_MICRO_BATCH, batch) if device.type == "cpu" else batch


def train_step(step_model, optimizer, images, labels, micro_batch: int, label_smoothing: float,
               autocast=nullcontext(), ddp: DistributedDataParallel | None = None):
    """One optimizer step on a batch, run in micro-batches of at most `micro_batch` images whose
    gradients sum to the whole batch's. Returns (summed loss, number correct) as device tensors."""
    optimizer.zero_grad(set_to_none=True)
    chunks = -(-len(labels) // micro_batch)
    loss_sum, correct = 0, 0
    for i, (x, y) in enumerate(zip(images.tensor_split(chunks), labels.tensor_split(chunks))):
        # Under DDP the gradients are all-reduced once a step, in the last micro-batch's backward.
        with ddp.no_sync() if ddp is not None and i < chunks - 1 else nullcontext():
            with autocast:
                logits = step_model(x)
                loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
            (loss * (len(y) / len(labels))).backward()
        # Sums stay on the device: a .item() per step would sync the GPU every batch.
        loss_sum = loss_sum + loss.detach() * len(y)
        correct = correct + (logits.argmax(1) == y).sum()
    optimizer.step()
    return loss_sum, correct


def train(config: TrainConfig, data: dict, run_dir: Path, resume: bool = False, device=None,
          progress: bool = True, stop_after_epochs: int | None = None) -> ResNet18:
    """Train (or resume) a run in `run_dir`; returns the model with its final weights.

    `stop_after_epochs` ends the call after that many epochs of this call, as an interruption
    would (used by the resume tests).

    Under `torchrun --nproc_per_node=N` it trains with DistributedDataParallel: each process takes
    batch_size/N images of every global batch (a disjoint shard of the epoch), gradients are
    averaged, the train metrics are summed over processes, and only rank 0 evaluates and writes.
    """
    device = torch.device(device) if device else pick_device()
    rank, world = distributed(device)
    if config.batch_size % world:
        raise ValueError(f"batch size {config.batch_size} does not split over {world} processes")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)

    x_train, y_train = data["train"]
    x_test, y_test = data["test"]
    validation = None
    splits = [("test", x_test, y_test)]
    if config.val_size:
        (x_train, y_train), validation = split_validation(x_train, y_train, config.val_size, config.seed)
        splits.append(("val", *validation))
    if config.val_corruptions:
        if config.val_corruptions > config.val_size:
            raise ValueError(f"val_corruptions ({config.val_corruptions}) needs that many validation images "
                             f"(val_size is {config.val_size})")
        # Made once (the corruptions cost more than the forward passes), measured after every epoch.
        splits.append(("val_corrupted", *every_corruption(*(v[:config.val_corruptions] for v in validation),
                                                          config.seed)))

    model = ResNet18(mean=config.mean, std=config.std)
    if config.init:  # fine-tuning: start from a finished run's weights (safetensors, never a pickle)
        start = ResNet18.from_pretrained(config.init)
        if start.mean.tolist() != model.mean.tolist() or start.std.tolist() != model.std.tolist():
            raise ValueError(f"{config.init} normalizes with another mean/std than this recipe")
        model.load_state_dict(start.state_dict())
    model = model.to(device, memory_format=torch.channels_last)
    dataset = ArrayDataset(x_train, y_train, train_transform(config))
    # Under DDP each rank loads its own shard of every epoch, batch_size/world images a step.
    loader = EpochLoader(dataset, config.batch_size // world, config.seed, loader_workers(config, device),
                         pin_memory=device.type == "cuda", rank=rank, world=world)
    optimizer = make_optimizer(model, config)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, one_cycle(config, config.epochs * len(loader)))
    history = {"config": config.to_dict(), "processes": world, "epochs": []}

    state_path = run_dir / STATE_NAME
    if resume and state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=True)
        if json.loads(json.dumps(state["history"]["config"])) != config.to_dict():
            raise ValueError(f"{state_path} was made with another config; start a new run folder instead")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        history = state["history"]
        print(f"resuming {run_dir} after epoch {len(history['epochs'])}/{config.epochs}")
    elif state_path.exists():
        raise FileExistsError(f"{run_dir} already holds a run: pass --resume to continue it, or pick another --out")
    history["device"] = device_name(device, world)  # set again on resume: the machine the run finishes on

    autocast = mixed_precision(device)
    ddp = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None) if world > 1 else None
    step_model = torch.compile(ddp or model) if config.compile else (ddp or model)
    micro_batch = micro_batch_size(config, device, config.batch_size // world)
    history["micro_batch"] = micro_batch
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    start_epoch = len(history["epochs"])
    for epoch in range(start_epoch, config.epochs):
        if stop_after_epochs is not None and epoch - start_epoch >= stop_after_epochs:
            return model
        model.train()
        started = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = torch.zeros((), device=device, dtype=torch.long)
        bar = tqdm(loader.epoch(epoch), total=len(loader), desc=f"epoch {epoch + 1}/{config.epochs}",
                   disable=not progress or rank > 0, leave=False)
        for images, labels in bar:
            images, labels = to_model_input(images, device), labels.to(device, non_blocking=True)
            batch_loss, batch_correct = train_step(step_model, optimizer, images, labels, micro_batch,
                                                   config.label_smoothing, autocast, ddp)
            schedule.step()
            loss_sum += batch_loss
            correct += batch_correct
            seen += len(labels)
        if world > 1:
            for total in (loss_sum, correct, seen):
                dist.all_reduce(total)
        train_seconds = time.perf_counter() - started
        if rank > 0:  # rank 0 evaluates and writes; the others go on to the next epoch
            continue

        record = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],
                  "train_loss": loss_sum.item() / seen.item(), "train_accuracy": correct.item() / seen.item(),
                  "train_images": seen.item(), "train_seconds": train_seconds,
                  "train_images_per_second": seen.item() / train_seconds}
        for name, x, y in splits:
            record[f"{name}_loss"], record[f"{name}_accuracy"] = loss_and_accuracy(
                predict_arrays(model, x, device=device)[0], y)
        record["seconds"] = time.perf_counter() - started
        history["epochs"].append(record)
        summary = "  ".join(f"{k} {v:.4f}" for k, v in record.items() if k.endswith(("loss", "accuracy")))
        print(f"epoch {epoch + 1}/{config.epochs}  {summary}  {record['seconds']:.0f}s", flush=True)

        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "schedule": schedule.state_dict(), "history": history}
        atomic_write(state_path, lambda tmp: torch.save(state, tmp))
        save_json(run_dir / "history.json", history)
    return model
