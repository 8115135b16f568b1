"""The architectures family (issue 12): networks read as dynamical systems.

``mlp``, ``resnet``, ``resnet_shared``, ``resnet_symmetric``, ``revnet``, ``iresnet``,
``lipschitz`` and ``node``; every module maps ``(N, width)`` states and exposes its
trajectory through depth and, where it has one, its inverse (see ``common``).
"""

from __future__ import annotations

from bench import Architecture, hookimpl
from plugins.architectures.iresnet import IResNet
from plugins.architectures.node import NeuralODE
from plugins.architectures.residual import (
    MLP,
    Lipschitz,
    ResNet,
    ResNetShared,
    ResNetSymmetric,
)
from plugins.architectures.revnet import RevNet

ARCHITECTURES: list[type[Architecture]] = [
    MLP,
    ResNet,
    ResNetShared,
    ResNetSymmetric,
    RevNet,
    IResNet,
    Lipschitz,
    NeuralODE,
]


@hookimpl
def bench_plugins() -> list[type[Architecture]]:
    return ARCHITECTURES
