"""cifar-resnet-gradcam: a CIFAR-10 ResNet-18 you can train, inspect with Grad-CAM and share."""
