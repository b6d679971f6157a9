"""Speed benchmarks: ours and a baseline measured side by side in one run, ratios printed.

    python -m benchmarks                      # everything that runs on this machine
    python -m benchmarks pipeline inference   # some of it
    python -m benchmarks gpu                  # training throughput on a GPU (skipped without one)
    python -m benchmarks browser              # the page in headless Chromium (needs Debian's chromium)
    python -m benchmarks zerogpu              # the Space in ZeroGPU mode against the plain handlers (not by default)
    python -m benchmarks methods              # each CAM method's heatmap against pytorch-grad-cam's (not by default)
    python -m benchmarks bulk                 # pictures in a ZIP of 200 against one by one (not by default)

The training parts measure the full recipe (batch 256, cutout), the one the GPU targets are about.
Timings on shared machines are noisy; the ratios, measured in the same run, are what count.
Results and the command go to BENCHMARKS.md. Not part of the package: nothing here ships in a Space.
"""

import argparse
import importlib

import torch

from cifar.engine.predict import TTA_MODES

from .common import MODEL


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*",
                        default=["pipeline", "train", "gpu", "inference", "app", "history", "browser"])
    parser.add_argument("--model", default=MODEL, help="run folder for the inference, app and history parts")
    parser.add_argument("--tta", choices=TTA_MODES, help="what the app part serves (default: the run's TTA)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU only'}")
    # part -> (module, function): imported when asked for (the browser part needs Playwright, the GPU machine may not)
    parts = {"pipeline": ("training", "bench_pipeline", ()), "train": ("training", "bench_train_step", ()),
             "gpu": ("training", "bench_gpu", ()), "inference": ("inference", "bench_inference", (args.model,)),
             "app": ("app", "bench_app", (args.model, args.tta)), "history": ("training", "bench_history", (args.model,)),
             "browser": ("browser", "bench_browser", (args.model,)),
             "zerogpu": ("zerogpu", "bench_zerogpu", (args.model,)), "methods": ("methods", "bench_methods", (args.model,)),
             "bulk": ("bulk", "bench_bulk", (args.model,))}
    unknown = set(args.parts) - set(parts)
    if unknown:
        parser.error(f"unknown part {', '.join(sorted(unknown))}: choose from {', '.join(parts)}")
    for part in args.parts:
        module, function, arguments = parts[part]
        getattr(importlib.import_module(f"benchmarks.{module}"), function)(*arguments)

if __name__ == "__main__":
    main()
