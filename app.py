"""Gradio demo of a trained run: prediction, Grad-CAM, training curves, misclassified images.

    python app.py                                  # the two bundled models: standard, and robust to corruptions
    python app.py --model runs/fast --share        # another run folder, with a public link
    python app.py --model runs/fast runs/full      # several: choose on the page, or see them side by side
    python app.py --model USER/REPO                # a run pushed to the Hugging Face Hub
    python app.py --mcp                            # also as tools for AI assistants (MCP), at /gradio_api/mcp/
    python app.py --tta none                       # one view per prediction instead of the run's TTA: faster
    python app.py --test-set ../shared/cifar10     # also browse and export the 10,000 test images
    python app.py --deploy USER/SPACE              # serve it as a Hugging Face Space instead (cifar/deploy/space.py)
    python app.py --deploy USER/SPACE --dry-run DIR   # stage that Space's upload in DIR, send nothing
    python app.py --deploy USER/SPACE --test-set ../shared/cifar10   # the Space browses the test set too
"""

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from cifar.device import on_zero_gpu  # noqa: E402  (imports no torch)

if on_zero_gpu():
    import spaces  # noqa: E402, F401  (ZeroGPU: before torch, which it patches)

from cifar.engine.predict import TTA_MODES  # noqa: E402

HERE = Path(__file__).parent
# The bundled models: the standard one (the page's default) and the one fine-tuned to resist corruptions.
DEFAULT_MODELS = [str(path) for path in (HERE / "checkpoints" / "resnet18-cifar10",
                                         HERE / "checkpoints" / "resnet18-cifar10-robust") if path.is_dir()]
# A deployed Space has no command line: its space.json says what to serve (cifar/deploy/space.py writes it).
SPACE_CONFIG = json.loads((HERE / "space.json").read_text()) if (HERE / "space.json").is_file() else {}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=SPACE_CONFIG.get("models") or DEFAULT_MODELS,
                        help="run folders or Hub repo ids; the first is the page's default (default: the bundled "
                        "models)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="also serve on a public gradio.live link")
    parser.add_argument("--mcp", action=argparse.BooleanOptionalAction,
                        help="also serve the API as tools for AI assistants (Model Context Protocol, at "
                        "/gradio_api/mcp/; default: off here, on on a Space, whose space.json says \"mcp\": true)")
    parser.add_argument("--tta", choices=TTA_MODES, default=SPACE_CONFIG.get("tta"),
                        help="test-time augmentation to predict with (default: the run's; none is the fastest)")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when there is a GPU)")
    parser.add_argument("--test-set", help="CIFAR-10's test.npz, or a folder with one: browse and export it on the "
                        "Test set tab (with --deploy: ship it with the Space, 28 MB)")
    deploy = parser.add_argument_group("deploying as a Hugging Face Space (token: HF_TOKEN or `hf auth login`)")
    deploy.add_argument("--deploy", metavar="USER/SPACE", help="create or update this Space, serving the --model(s) "
                        "with --tta")
    deploy.add_argument("--hardware", help="hardware for the Space, e.g. cpu-basic (needs PRO) or t4-small (needs "
                        "billing); default: ZeroGPU for a new Space (free accounts: up to 2), an existing one's own")
    deploy.add_argument("--private", action="store_true", help="make the Space private (a new one, or an existing one)")
    deploy.add_argument("--dry-run", metavar="DIR", help="stage the upload in DIR and print the request; no token, "
                        "nothing sent")
    return parser.parse_args(argv)


def deploy(args, argv) -> None:
    from cifar.deploy.space import DeployError, deploy_space, dry_run

    words = argv if argv is not None else sys.argv[1:]
    if args.dry_run:  # the command the Space's README quotes is the real deploy, not the rehearsal
        without = [w for i, w in enumerate(words) if w != "--dry-run" and (i == 0 or words[i - 1] != "--dry-run")]
        words = [w for w in without if not w.startswith("--dry-run=")]
    command = "python app.py " + shlex.join(words)
    try:
        if args.dry_run:
            print(dry_run(Path(args.dry_run), args.deploy, args.model, args.tta, args.hardware, args.private, command,
                          args.test_set))
            print("dry run: nothing was sent; without --dry-run, the same command uploads these files")
            return
        url, done = deploy_space(args.deploy, args.model, args.tta, args.hardware, args.private, command, args.test_set)
    except DeployError as error:
        sys.exit(f"error: {error}")
    print("\n".join(done))
    print(f"deployed {', '.join(args.model)} to {url} (the Space builds and starts in a few minutes)")


def main(argv=None):
    args = parse_args(argv)
    if args.deploy:
        return deploy(args, argv)
    from cifar.page.layout import build_demo, launch
    from cifar.device import pick_device
    from cifar.runs.folder import RunFolderError, load_run, model_names

    # On ZeroGPU the model sits on "cuda" from the start; the GPU itself is attached per request.
    device = args.device or ("cuda" if on_zero_gpu() else pick_device())
    if str(device).startswith("cuda") and not on_zero_gpu():
        import torch

        if not torch.cuda.is_available():
            sys.exit(f"error: --device {device}, but this machine has no CUDA GPU that torch can use")
    try:
        names = model_names(args.model)
    except ValueError as error:
        sys.exit(f"error: {error}")
    runs = {}
    for name, model in zip(names, args.model):
        try:
            runs[name] = load_run(model, device)
        except RunFolderError as error:
            sys.exit(f"error: cannot load the model {model}: {error}")
    examples = sorted(str(p) for p in (HERE / "examples").glob("*.png"))
    from cifar.dataset import TestSetError

    # A Space's test set, when its deploy shipped one, lies beside app.py.
    test_set = args.test_set or (SPACE_CONFIG.get("test_set") and HERE / SPACE_CONFIG["test_set"])
    try:
        demo = build_demo(runs, examples, args.tta, test_set)
    except TestSetError as error:
        sys.exit(f"error: cannot browse the test set: {error}")
    # A clicked example is sent back as the input image: Gradio serves it from any working directory only if allowed.
    mcp = args.mcp if args.mcp is not None else SPACE_CONFIG.get("mcp", False)
    launch(demo, mcp=mcp, server_name=args.host, server_port=args.port, share=args.share,
           allowed_paths=[str(HERE / "examples")])


if __name__ == "__main__":
    main()
