"""Gradio demo of a trained run: prediction, Grad-CAM, training curves, misclassified images.

    python app.py                                  # the bundled checkpoint
    python app.py --model runs/fast --share        # another run folder, with a public link
    python app.py --model USER/REPO                # a run pushed to the Hugging Face Hub
    python app.py --tta none                       # one view per prediction instead of the run's TTA: faster
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from cifar.device import on_zero_gpu  # noqa: E402  (imports no torch)

if on_zero_gpu():
    import spaces  # noqa: E402, F401  (ZeroGPU: before torch, which it patches)

from cifar.evaluate import TTA_MODES  # noqa: E402

HERE = Path(__file__).parent
DEFAULT_MODEL = HERE / "checkpoints" / "resnet18-cifar10"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL),
                        help="run folder or Hub repo id")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="also serve on a public gradio.live link")
    parser.add_argument("--tta", choices=TTA_MODES,
                        help="test-time augmentation to predict with (default: the run's; none is the fastest)")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when there is a GPU)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from cifar.demo import build_demo, launch
    from cifar.device import pick_device
    from cifar.run_folder import RunFolderError, load_run

    # On ZeroGPU the model sits on "cuda" from the start; the GPU itself is attached per request.
    device = args.device or ("cuda" if on_zero_gpu() else pick_device())
    if str(device).startswith("cuda") and not on_zero_gpu():
        import torch

        if not torch.cuda.is_available():
            sys.exit(f"error: --device {device}, but this machine has no CUDA GPU that torch can use")
    try:
        run = load_run(args.model, device)
    except RunFolderError as error:
        sys.exit(f"error: cannot load the model: {error}")
    examples = sorted(str(p) for p in (HERE / "examples").glob("*.png"))
    launch(build_demo(run, examples, args.tta), server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
