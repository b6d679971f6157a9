"""Commands run on a finished run folder, each adding one measurement to it (metrics.json, a figure, a card section):

    python -m cifar.measure.faithfulness_table RUN   ROAD of every CAM method at every layer
    python -m cifar.measure.sanity RUN               the model-randomization sanity check
    python -m cifar.measure.class_heatmaps RUN       each class's mean heatmap
    python -m cifar.measure.test_map RUN             the test set as a map (UMAP of the penultimate features)
    python -m cifar.measure.corruption_benchmark RUN accuracy under the CIFAR-10-C corruptions
    python -m cifar.measure.recalibrate RUN          the temperature and its reliability diagram
    python -m cifar.measure.reevaluate RUN           each test image's logits (predictions.npz)
"""

import argparse
import os


def on_the_test_set(description: str, argv=None, more=None) -> tuple:
    """The command line of a command that measures a run on the test set: (parser, args, the run, test images,
    labels). `more(parser)` adds the command's own arguments."""
    from cifar.dataset import read_test_set
    from cifar.runs.folder import load_run

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run folder")
    parser.add_argument("--data-dir", default=os.environ.get("CIFAR10_DIR"), help="folder with test.npz (or the file)")
    if more:
        more(parser)
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("where is the test set? --data-dir FOLDER (or set CIFAR10_DIR)")
    images, labels = read_test_set(args.data_dir)
    return parser, args, load_run(args.run), images, labels
