"""Train the CIFAR-10 ResNet-18 and write a run folder (see cifar/runs/folder.py).

    python train.py --data-dir ../shared/cifar10 --out runs/fast          # the 4-epoch recipe
    python train.py --data-dir ../shared/cifar10 --out runs/fast --resume # after an interruption
    python train.py --recipe seed --out runs/seed                         # the original project
    python train.py --recipe robust --out runs/robust                     # AugMix fine-tune of the shipped model
    python train.py --out runs/fast --push-to-hub USER/REPO               # train, then push
    python train.py --out runs/fast --push-to-hub USER/REPO --push-only   # push a finished run
"""

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from cifar.training.config import RECIPES, make_config
from cifar.engine.predict import TTA_MODES


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="fast", help="preset hyperparameters")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--micro-batch", type=int, help="images per forward/backward, gradients accumulate "
                        "to the batch (default: 64 on CPU, the whole batch on GPU)")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--label-smoothing", type=float)
    parser.add_argument("--cutout", type=int, help="cutout hole size in pixels (0: off)")
    parser.add_argument("--tta", choices=TTA_MODES, help="test-time augmentation the final metrics are measured with")
    parser.add_argument("--val-size", type=int, help="training images held out for validation")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--init", metavar="RUN", help="start from this run folder's weights (fine-tuning)")
    parser.add_argument("--workers", type=int, help="DataLoader workers (default: 0 on CPU, 8 on GPU)")
    parser.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    parser.add_argument("--data-dir", help="folder with train.npz/test.npz (default: env CIFAR10_DIR, "
                        "else torchvision downloads into ./data)")
    parser.add_argument("--out", type=Path, default=Path("runs/latest"), help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    parser.add_argument("--push-to-hub", metavar="USER/REPO", help="upload the run folder when done")
    parser.add_argument("--push-only", action="store_true", help="only push the finished run in --out")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    return parser.parse_args(argv)


def check_args(args) -> None:
    """Everything that can be checked before training, so a bad call fails in seconds, not hours."""
    for name in ("epochs", "batch_size", "micro_batch", "val_size", "workers", "cutout"):
        value = getattr(args, name)
        minimum = 1 if name in ("epochs", "batch_size") else (-1 if name == "workers" else 0)
        if value is not None and value < minimum:
            sys.exit(f"error: --{name.replace('_', '-')} must be >= {minimum}, got {value}")
    if args.lr is not None and args.lr <= 0:
        sys.exit(f"error: --lr must be > 0, got {args.lr}")
    data_dir = args.data_dir or os.environ.get("CIFAR10_DIR")
    init = args.init or RECIPES[args.recipe].init
    if init and not args.push_only and not (Path(init) / "model.safetensors").is_file():
        sys.exit(f"error: the training starts from {init}, which is not a run folder with model.safetensors")
    if data_dir and not args.push_only and not Path(data_dir).is_dir():
        sys.exit(f"error: data folder {data_dir} does not exist")
    if args.push_to_hub:
        from huggingface_hub import get_token

        if not get_token():
            sys.exit("error: --push-to-hub needs a Hugging Face token: set HF_TOKEN or run `hf auth login`")
    elif args.push_only:
        sys.exit("error: --push-only needs --push-to-hub USER/REPO")
    if args.push_only:
        return
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        probe = args.out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        sys.exit(f"error: cannot write to run folder {args.out}: {error.strerror}")


def push(args) -> None:
    from cifar.deploy.hub import PushError, push_run

    try:
        print(f"pushed {args.out} to {push_run(args.out, args.push_to_hub, private=args.private)}")
    except PushError as error:
        sys.exit(f"error: {error}")


def main(argv=None) -> None:
    args = parse_args(argv)
    check_args(args)
    if args.push_only:
        return push(args)

    import torch

    from cifar.dataset import load_cifar10
    from cifar.training.finish import finish_run
    from cifar.device import pick_device
    from cifar.training.loop import is_main_process, train

    config = make_config(args.recipe, epochs=args.epochs, batch_size=args.batch_size, micro_batch=args.micro_batch,
                         lr=args.lr, label_smoothing=args.label_smoothing, cutout=args.cutout, tta=args.tta,
                         val_size=args.val_size, seed=args.seed, init=args.init, workers=args.workers,
                         compile=args.compile)
    device = torch.device(args.device) if args.device else pick_device()
    data = load_cifar10(args.data_dir)
    started = time.perf_counter()
    try:
        model = train(config, data, args.out, resume=args.resume, device=device)
    except KeyboardInterrupt:
        sys.exit("\ninterrupted: the last finished epoch is saved; continue with the same command plus --resume")
    except (FileExistsError, ValueError) as error:
        sys.exit(f"error: {error}")
    if is_main_process():  # under torchrun, rank 0 alone writes the run folder and pushes
        command = "python train.py " + shlex.join(a for a in (argv if argv is not None else sys.argv[1:])
                                                  if a != "--resume")
        metrics = finish_run(args.out, data, model, {"command": command}, device)
        print(f"done in {(time.perf_counter() - started) / 60:.1f} min: test accuracy "
              f"{100 * metrics['test_accuracy']:.2f}% ({100 * metrics['test_accuracy_tta']:.2f}% with "
              f"{metrics['tta']} TTA); run folder {args.out}")
        if args.push_to_hub:
            push(args)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
