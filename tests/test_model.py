import pytest
import torch
from safetensors.torch import load_file, save_file

from cifar.engine.model import CIFAR10_MEAN, CLASSES, ResNet18, count_parameters


def test_parameter_count_is_the_cifar_resnet18():
    assert count_parameters(ResNet18()) == 11_173_962


def test_module_names_follow_torchvision():
    names = dict(ResNet18().named_modules())
    for name in ("conv1", "bn1", "layer1", "layer4", "layer4.1.conv2", "layer2.0.shortcut.0", "fc"):
        assert name in names
    assert "maxpool" not in names  # the CIFAR stem keeps 32x32
    assert isinstance(names["conv1"], torch.nn.Conv2d) and names["conv1"].kernel_size == (3, 3)


def test_forward_shape_and_layer_resolutions():
    model = ResNet18().eval()
    sizes = {}
    for name in ("layer1", "layer2", "layer3", "layer4"):
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: sizes.__setitem__(name, o.shape[-1]))
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert sizes == {"layer1": 32, "layer2": 16, "layer3": 8, "layer4": 4}


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = ResNet18(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)).eval()
    model.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"model.safetensors", "config.json"}
    stored = load_file(tmp_path / "model.safetensors")
    assert stored["conv1.weight"].dtype == torch.float16  # fp16 storage keeps the file under 25 MB
    loaded = ResNet18.from_pretrained(tmp_path)
    assert loaded.classes == list(CLASSES)
    assert loaded.mean.flatten().tolist() == [0.5, 0.5, 0.5]  # normalization travels in config.json
    x = torch.rand(4, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model(x), atol=2e-2, rtol=2e-2)


def test_default_config_carries_cifar_normalization(tmp_path):
    ResNet18().save_pretrained(tmp_path)
    assert torch.allclose(ResNet18.from_pretrained(tmp_path).mean.flatten(), torch.tensor(CIFAR10_MEAN))


def test_loading_is_strict(tmp_path):
    ResNet18().save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    del state["fc.weight"]
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(RuntimeError, match="fc.weight"):
        ResNet18.from_pretrained(tmp_path)


def test_the_fused_copy_folds_batchnorm_and_answers_as_the_model():
    """Score-CAM's many forward passes run on it: same logits, no BatchNorm left, the model itself untouched."""
    torch.manual_seed(0)
    model = ResNet18()
    model.train()
    model(torch.rand(64, 3, 32, 32))  # running statistics away from their initial 0 and 1
    model.eval()
    fused = model.fused()
    images = torch.rand(8, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fused(images), model(images), atol=1e-4, rtol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 20
    assert fused.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert fused.conv1.weight.data_ptr() != model.conv1.weight.data_ptr() and fused.classes == model.classes
