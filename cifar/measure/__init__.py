"""Commands run on a finished run folder, each adding one measurement to it (metrics.json, a figure, a card section):

    python -m cifar.measure.faithfulness_table RUN   ROAD of every CAM method at every layer
    python -m cifar.measure.sanity RUN               the model-randomization sanity check
    python -m cifar.measure.class_heatmaps RUN       each class's mean heatmap
    python -m cifar.measure.corruption_benchmark RUN accuracy under the CIFAR-10-C corruptions
    python -m cifar.measure.recalibrate RUN          the temperature and its reliability diagram
    python -m cifar.measure.reevaluate RUN           each test image's logits (predictions.npz)
"""
