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

from cifar.evaluate import TTA_MODES  # noqa: E402

HERE = Path(__file__).parent
DEFAULT_MODEL = HERE / "checkpoints" / "resnet18-cifar10"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="run folder or Hub repo id")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="also serve on a public gradio.live link")
    parser.add_argument("--tta", choices=TTA_MODES,
                        help="test-time augmentation to predict with (default: the run's; none is the fastest)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from cifar.demo import build_demo, launch
    from cifar.run_folder import RunFolderError, load_run

    try:
        run = load_run(args.model)
    except RunFolderError as error:
        sys.exit(f"error: cannot load the model: {error}")
    examples = sorted(str(p) for p in (HERE / "examples").glob("*.png"))
    launch(build_demo(run, examples, args.tta), server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
