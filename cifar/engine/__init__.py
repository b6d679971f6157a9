"""One trained model, explained: the ResNet-18, its predictions (with test-time augmentation and calibration), the
CAM methods and their ROAD faithfulness, and the corruptions it is tested under. No UI and no training in it: the
page, the measuring commands and training all ask this engine, so they report the same numbers."""
