"""Triton kernels for dynbench's hot paths, each beside its pure-torch reference.

    from kernels import warp, compose, svf_exp, sine_mlp

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

from kernels.sine_mlp import sine_mlp
from kernels.svf import compose, svf_exp
from kernels.warp import warp

__all__ = ["compose", "sine_mlp", "svf_exp", "warp"]
