"""A run's model card (its README.md, which the Hub shows): written when training finishes, and a section replaced
by each command that measures the run afterwards.
"""

import re

from cifar.engine.calibration import card_section


def recipe_text(config: dict) -> str:
    """The recipe in a sentence, from the config the run used (a card must not claim a cutout it lacked)."""
    if config["nesterov"]:
        optimizer = f"SGD with Nesterov momentum {config['momentum']}"
    else:
        optimizer = f"SGD with momentum {config['momentum']}" if config["momentum"] else "plain SGD"
    loss = (f"cross-entropy with label smoothing {config['label_smoothing']}" if config["label_smoothing"]
            else "cross-entropy")
    if config["warmup"] > 0:
        schedule = (f"one-cycle learning rate (peak {config['lr']} after {config['warmup']:.0%} of the run, "
                    "linear decay to zero)")
    else:
        schedule = f"constant learning rate {config['lr']}"
    augmentations = [f"rotation up to {config['rotate']} degrees"] if config["rotate"] else []
    if config["pad"]:
        augmentations.append(f"reflect-pad {config['pad']} + random crop")
    augmentations.append("horizontal flip")
    if config.get("augmix"):
        augmentations.append(f"AugMix at severity {config['augmix']} (the authors' operations and mixing, "
                             "cifar/training/augmix.py)")
    if config["cutout"]:
        augmentations.append(f"cutout of one {config['cutout']}x{config['cutout']} hole")
    if not config["weight_decay"]:
        decay = "no weight decay"
    else:
        decay = f"weight decay {config['weight_decay']}" + ("" if config["decay_norm_and_bias"]
                                                           else " (not on BatchNorm weights and biases)")
    start = f"Fine-tuned from the weights of `{config['init']}`: " if config.get("init") else ""
    return (f"{start}{optimizer}, {loss}, {schedule}, batch {config['batch_size']}, {decay}; "
            f"Albumentations augmentation: {', '.join(augmentations)}.")


def model_card(metrics: dict, history: dict, run_info: dict) -> str:
    config = history["config"]
    accuracy, accuracy_tta = 100 * metrics["test_accuracy"], 100 * metrics["test_accuracy_tta"]
    per_class = "\n".join(f"| {name} | {100 * acc:.1f}% |" for name, acc in metrics["per_class_accuracy"].items())
    recipe = "\n".join(f"| `{k}` | `{v}` |" for k, v in config.items())
    minutes = sum(e["seconds"] for e in history["epochs"]) / 60
    if config["val_size"]:
        how_chosen = (f"{config['val_size']:,} training images were held out as a validation split; the test "
                      "set was used only for the numbers above.")
        if config.get("val_corruptions"):
            how_chosen += (f" After each epoch the first {config['val_corruptions']} of them were also measured "
                           "under every CIFAR-10-C corruption made here (`val_corrupted_accuracy` in history.json).")
        if config.get("init"):
            how_chosen += (f" The starting weights (`{config['init']}`) were trained on all 50,000 training images, "
                           "the validation split among them: its clean accuracy flatters the model.")
    else:
        how_chosen = ("Trained on the whole training set: the hyperparameters were fixed before the run, from "
                      "published recipes (`cifar/training/config.py` says which), and none was chosen by looking at the "
                      "test set.")
    calibration = card_section(metrics["calibration"]) if "calibration" in metrics else ""
    origin = f"fine-tuned from `{config['init']}`" if config.get("init") else "trained from scratch"
    return f"""---
library_name: pytorch
license: mit
tags: [image-classification, cifar10, resnet18, grad-cam]
datasets: [cifar10]
metrics: [accuracy]
model-index:
- name: cifar-resnet18
  results:
  - task: {{type: image-classification}}
    dataset: {{name: CIFAR-10, type: cifar10, split: test}}
    metrics:
    - {{type: accuracy, value: {accuracy:.2f}, name: test accuracy}}
    - {{type: accuracy, value: {accuracy_tta:.2f}, name: test accuracy ({metrics['tta']} TTA)}}
---

# CIFAR-10 ResNet-18

A ResNet-18 (CIFAR variant: 3x3 stem, no max-pool, 11,173,962 parameters) {origin} on
CIFAR-10 with the `train.py` of cifar-resnet-gradcam. Weights are stored in fp16
(`model.safetensors`); all numbers below were measured on exactly these weights.

| | |
|---|---|
| test accuracy | **{accuracy:.2f}%** |
| test accuracy with {metrics['tta']} test-time augmentation | **{accuracy_tta:.2f}%** |
| test images | {metrics['test_images']:,} |
| epochs | {len(history['epochs'])} |
| trained on | {history['device']} |
| images per forward (micro-batch) | {history['micro_batch']}: gradients accumulate to batches of {config['batch_size']} |
| training time | {minutes:.1f} min |
| training set | {run_info['train_images']:,} images |

## Use

```python
from cifar.engine.model import ResNet18


model = ResNet18.from_pretrained("path/or/user-repo")  # input: (N, 3, 32, 32) floats in [0, 1]
```

or run the Gradio demo: `python app.py --model path/or/user-repo`.

## Curves

![accuracy](accuracy.png)
![loss](loss.png)

## Per-class test accuracy ({metrics['tta']} TTA)

| class | accuracy |
|---|---|
{per_class}

{calibration}## Training recipe

{recipe_text(config)} {how_chosen}
Reproduce with:

```
{run_info['command']}
```

| hyperparameter | value |
|---|---|
{recipe}

## Files

`model.safetensors` + `config.json` (weights, classes, normalization), `history.json` (per-epoch
curves), `metrics.json` (accuracy, per-class accuracy, confusion matrix), `misclassified.npz` (every
misclassified test image with true label, prediction and confidence, and its Grad-CAM heatmaps at
`layer4` for the predicted and the true class), `predictions.npz` (each test image's logits, plain and
with the TTA), `accuracy.png`, `loss.png`, `confusion_matrix.png`, `calibration.png` (reliability diagrams).
"""


def with_card_section(card: str, heading: str, section: str) -> str:
    """The model card with the section under `heading` replaced by `section` (heading included), or added before its
    list of files: how commands run after training (calibration, faithfulness) put their numbers on the card."""
    pattern = re.escape(heading) + r"\n.*?(?=^## |\Z)"
    if re.search(pattern, card, flags=re.S | re.M):
        return re.sub(pattern, lambda _: section, card, count=1, flags=re.S | re.M)
    files = card.find("## Files")
    return card[:files] + section + card[files:] if files >= 0 else card.rstrip("\n") + "\n\n" + section
