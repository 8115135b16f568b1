"""Pure-torch references for every kernel in this package.

Shared by the kernels' ``backend="torch"`` path, the tests and the benchmarks.
Each section belongs to one kernel family; keep them independent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

# ---------------------------------------------------------------------------
# warp / compose / svf_exp (kernels/warp.py, kernels/svf.py)
# ---------------------------------------------------------------------------

# (section: warp)

WARP_MODES = ("bilinear", "trilinear", "nearest")
WARP_PADDINGS = ("zeros", "border")


def identity_grid(
    shape: tuple[int, ...],
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Voxel coordinates ``(ndim, *shape)``: channel i holds the index along spatial axis i."""
    axes = [torch.arange(n, device=device, dtype=dtype) for n in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"))


def grid_sample_warp(
    image: torch.Tensor,
    disp: torch.Tensor,
    mode: str = "bilinear",
    padding: str = "zeros",
    align_corners: bool = True,
    grid: torch.Tensor | None = None,
) -> torch.Tensor:
    """VoxelMorph's SpatialTransformer: ``grid_sample`` of ``image`` at ``index + disp``.

    The eager baseline of the benchmarks (no NaN handling). ``grid`` is the identity
    ``identity_grid(spatial)``, which SpatialTransformer keeps as a buffer; pass it to
    leave its construction out of a timing. The voxel coordinates are normalised to
    [-1, 1] with the ``align_corners`` convention and put in grid_sample's order (x, the
    last axis, first); grid_sample un-normalises with the same convention, so both
    conventions sample the same voxel position. A size-1 axis cannot be normalised with
    ``align_corners=True`` (grid_sample maps every coordinate on it to 0), so the
    function switches to ``False`` there.
    """
    spatial = image.shape[2:]
    if any(n == 1 for n in spatial):
        align_corners = False
    if grid is None:
        grid = identity_grid(tuple(spatial), disp.device, disp.dtype)
    locs = grid + disp
    coords = []
    for i, n in enumerate(spatial):
        if align_corners:
            coords.append(locs[:, i] * (2.0 / (n - 1)) - 1.0)
        else:
            coords.append((2.0 * locs[:, i] + 1.0) / n - 1.0)
    sample_at = torch.stack(coords[::-1], dim=-1).to(image.dtype)
    interp = "nearest" if mode == "nearest" else "bilinear"
    return torch.nn.functional.grid_sample(
        image, sample_at, mode=interp, padding_mode=padding, align_corners=align_corners
    )


def warp_reference(
    image: torch.Tensor,
    disp: torch.Tensor,
    mode: str = "bilinear",
    padding: str = "zeros",
    align_corners: bool = True,
) -> torch.Tensor:
    """Sample ``image`` (B, C, *S) at ``index + disp``: ``grid_sample_warp`` with NaNs defined.

    ``disp`` is (B, ndim, *S) in voxels, channel i along spatial axis i. A NaN in any
    displacement channel makes that output voxel NaN in every image channel; it
    contributes no gradient to the image and gets a zero displacement gradient
    (``torch.where`` semantics). The Triton kernels do the same.
    """
    nan = torch.isnan(disp).any(dim=1, keepdim=True)
    safe = torch.where(nan, torch.zeros((), dtype=disp.dtype, device=disp.device), disp)
    out = grid_sample_warp(image, safe, mode=mode, padding=padding, align_corners=align_corners)
    return torch.where(nan, torch.full((), float("nan"), dtype=out.dtype, device=out.device), out)


def compose_reference(
    disp_a: torch.Tensor, disp_b: torch.Tensor, mode: str = "bilinear", padding: str = "zeros"
) -> torch.Tensor:
    """Displacement of ``phi_a o phi_b``: ``disp_b(x) + disp_a(x + disp_b(x))``."""
    return warp_reference(disp_a, disp_b, mode=mode, padding=padding) + disp_b


def svf_exp_reference(
    velocity: torch.Tensor, steps: int = 7, padding: str = "zeros"
) -> torch.Tensor:
    """Exponential of a stationary velocity field by scaling and squaring (VoxelMorph's
    VecInt): ``u = v / 2**steps``, then ``steps`` times ``u = u o u``."""
    disp = velocity / (2**steps)
    for _ in range(steps):
        disp = compose_reference(disp, disp, padding=padding)
    return disp


def smooth_field(
    batch: int,
    spatial: tuple[int, ...],
    amplitude: float,
    seed: int = 0,
    coarse: int = 4,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """A smooth random displacement/velocity (B, ndim, *spatial): noise on a coarse
    ``coarse``^ndim grid, linearly upsampled on ``device``, scaled so that max |v| =
    amplitude. The same ``seed`` gives the same field on every device (up to rounding)."""
    gen = torch.Generator().manual_seed(seed)
    ndim = len(spatial)
    noise = torch.randn((batch, ndim, *([coarse] * ndim)), generator=gen).to(device)
    mode = "bilinear" if ndim == 2 else "trilinear"
    field = torch.nn.functional.interpolate(noise, size=spatial, mode=mode, align_corners=True)
    return field * (amplitude / field.abs().max())


def vecint(
    velocity: torch.Tensor, steps: int, grid: torch.Tensor, padding: str = "zeros"
) -> torch.Tensor:
    """The eager baseline of scaling and squaring: VoxelMorph's VecInt (``u = v / 2**steps``,
    then ``steps`` times ``u = u + SpatialTransformer(u, u)``) on ``grid_sample_warp``
    with the identity ``grid`` kept as a buffer, and no NaN handling."""
    disp = velocity / 2**steps
    for _ in range(steps):
        disp = disp + grid_sample_warp(disp, disp, padding=padding, grid=grid)
    return disp


# ---------------------------------------------------------------------------
# sine_mlp (kernels/sine_mlp.py)
# ---------------------------------------------------------------------------

# (section: sine_mlp)

SINE_MLP_PRECISIONS = ("fp32", "tf32", "fp16", "bf16")
SINE_MLP_FINAL_ACTIVATIONS = (None, "sine", "sigmoid", "tanh")

# Unit roundoff of each precision's matmul operands: fp32 2^-24; tf32 and fp16 keep
# 10 stored mantissa bits (2^-11); bf16 keeps 7 (2^-8). Accumulation is fp32 in all.
SINE_MLP_UNIT_ROUNDOFF = {"fp32": 2.0**-24, "tf32": 2.0**-11, "fp16": 2.0**-11, "bf16": 2.0**-8}


def round_to_tf32(t: torch.Tensor) -> torch.Tensor:
    """Round fp32 values to the nearest tf32 value (10 mantissa bits, ties to even),
    as an fp32 tensor: what a tensor core reads from an fp32 operand in tf32 mode."""
    bits = t.float().contiguous().view(torch.int32)
    # Keep 10 of fp32's 23 mantissa bits: add half of the dropped 13-bit field (plus
    # the kept LSB for ties-to-even), then clear it. inf/nan are left untouched.
    lsb = (bits >> 13) & 1
    rounded = ((bits + 0x0FFF + lsb) >> 13) << 13
    finite = torch.isfinite(t.float())
    return torch.where(finite, rounded.view(torch.float32), t.float())


def _round_operand(t: torch.Tensor, precision: str) -> torch.Tensor:
    """Round a matmul operand to what ``precision`` feeds the tensor cores, in fp32.

    Products of two fp16/bf16/tf32 values are exact in fp32 (at most 22 significand
    bits), so rounding the operands and multiplying in fp32 reproduces tensor-core
    numerics up to the order of the fp32 accumulation.
    """
    if precision == "fp32" or t.dtype == torch.float64:
        return t
    if precision == "tf32":
        return round_to_tf32(t)
    half = torch.float16 if precision == "fp16" else torch.bfloat16
    return t.to(half).float()


@contextlib.contextmanager
def torch_precision(precision: str, device_type: str) -> Iterator[None]:
    """How plain torch asks for each sine_mlp precision: "fp32" at full fp32 matmul
    precision, "tf32" as ``set_float32_matmul_precision("high")``, "fp16"/"bf16" under
    ``torch.autocast`` (matmul outputs, hence sine arguments, in half precision). The
    baselines the fused kernel is measured against run inside it."""
    if precision not in SINE_MLP_PRECISIONS:
        raise ValueError(f'Invalid precision "{precision}". Must be one of {SINE_MLP_PRECISIONS}')
    if precision in ("fp16", "bf16"):
        dtype = torch.float16 if precision == "fp16" else torch.bfloat16
        with torch.autocast(device_type, dtype=dtype):
            yield
        return
    old = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old)


def sine_mlp_reference(
    x: torch.Tensor,
    weights: list[torch.Tensor] | tuple[torch.Tensor, ...],
    biases: list[torch.Tensor] | tuple[torch.Tensor, ...],
    *,
    omega0: float = 30.0,
    first_omega0: float = 30.0,
    final_activation: str | None = None,
    precision: str = "fp32",
) -> torch.Tensor:
    """SIREN forward in plain torch: ``h = sin(omega * (W h + b))`` for every layer but
    the last, which is linear unless ``final_activation`` is "sine" (omega0), "sigmoid"
    or "tanh". The first layer uses ``first_omega0``.

    Computes in ``x.dtype`` (float64 gives the ground truth the tests measure against).
    ``precision`` other than "fp32" rounds the operands of every layer but the first
    to tf32/fp16/bf16 and accumulates in fp32, as the Triton kernel's tensor cores do;
    the first layer and every sine argument stay in fp32. Differentiable by autograd.
    """
    if precision not in SINE_MLP_PRECISIONS:
        raise ValueError(f'Invalid precision "{precision}". Must be one of {SINE_MLP_PRECISIONS}')
    if final_activation not in SINE_MLP_FINAL_ACTIVATIONS:
        raise ValueError(
            f'Invalid final_activation "{final_activation}". '
            f"Must be one of {SINE_MLP_FINAL_ACTIVATIONS}"
        )
    h = x
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases)):
        if i == 0:
            z = torch.nn.functional.linear(h, w, b)
        else:
            z = torch.nn.functional.linear(
                _round_operand(h, precision), _round_operand(w, precision), b
            )
        if i < last or final_activation == "sine":
            h = torch.sin((first_omega0 if i == 0 else omega0) * z)
        elif final_activation == "sigmoid":
            h = torch.sigmoid(z)
        elif final_activation == "tanh":
            h = torch.tanh(z)
        else:
            h = z
    return h


def siren_parameters(
    in_features: int,
    hidden: list[int] | tuple[int, ...],
    out_features: int,
    *,
    omega0: float = 30.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Weights and biases with SIREN's initialisation (Sitzmann et al. 2020, sec. 3.2):
    first layer U(-1/in, 1/in); later layers U(-sqrt(6/fan_in)/omega0, +...), so every
    sine argument is ~N(0, 2) whatever the depth. Biases like nn.Linear's default."""
    widths = [in_features, *hidden, out_features]
    weights, biases = [], []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        bound = 1.0 / fan_in if i == 0 else (6.0 / fan_in) ** 0.5 / omega0
        w = (torch.rand(fan_out, fan_in, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        b_bound = 1.0 / fan_in**0.5
        b = (torch.rand(fan_out, generator=generator, dtype=torch.float64) * 2 - 1) * b_bound
        weights.append(w.to(dtype=dtype, device=device))
        biases.append(b.to(dtype=dtype, device=device))
    return weights, biases
