"""Triton kernels for dynbench's hot paths, each beside its pure-torch reference.

    from kernels import warp, compose, svf_exp, sine_mlp

``triton_can_run(device_type)`` says whether the Triton path would run on a device
here (compiled on CUDA, interpreted on CPU under ``TRITON_INTERPRET=1``) or fall back.

This package knows nothing of plugins. Every public function takes
``backend="triton" | "torch"``; ``"torch"`` is the reference in
``kernels.reference`` and the fallback where Triton is not available.

The functions are imported eagerly. Two of them share their submodule's name
(``kernels.warp``, ``kernels.sine_mlp``): importing a submodule binds the package
attribute of that name to the module, so a lazy export would hand out the module
in some import orders. Binding the functions here, after their modules load,
makes ``kernels.warp`` the function in every order; reach the modules through
``importlib.import_module("kernels.warp")`` or ``from kernels.warp import ...``.
Triton's JIT reads ``TRITON_INTERPRET`` when a kernel is decorated, i.e. when
this package is first imported: set it before that.
"""

from __future__ import annotations

from kernels._triton import interpreting, triton_available, triton_can_run
from kernels.sine_mlp import sine_mlp, sine_mlp_input_grad
from kernels.svf import compose, svf_exp
from kernels.warp import warp

__all__ = [
    "compose",
    "interpreting",
    "sine_mlp",
    "sine_mlp_input_grad",
    "svf_exp",
    "triton_available",
    "triton_can_run",
    "warp",
]
