"""Training: the recipes (config.py), the Albumentations pipeline and AugMix (data.py, augmix.py), the loop
(loop.py), the evaluation it ends with (evaluate.py) and the run folder it leaves (finish.py). Only train.py, the
measuring commands that need the validation split, and the benchmarks import it; the page never does."""
