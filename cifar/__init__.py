"""cifar-resnet-gradcam: a CIFAR-10 ResNet-18 you can train, inspect with Grad-CAM and share.

Folders by role, each importing only those listed before it (tests/test_layout.py holds them to it):

    files.py, device.py, dataset.py   foundations: atomic files, where the model runs, CIFAR-10's arrays
    engine/     one model explained: the network, predictions with TTA, CAM methods, ROAD, calibration, corruptions
    runs/       a run folder: reading it, its model card, its figures
    training/   the training loop, its Albumentations pipeline and AugMix, and what a finished run writes
    measure/    commands that measure a finished run and add the result to its folder (python -m cifar.measure.X)
    page/       the Gradio page: the served models, the endpoints, one module per tab
    deploy/     the Hub: pushing a run, deploying the page as a Space, the platforms' rules
"""
