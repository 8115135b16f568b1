"""Lower-bound cost models of the kernels: bytes a fused pass must move, FLOPs it must do.

Benchmarks divide these by a measured time to report achieved bandwidth (GB/s) or
throughput (TFLOP/s), and compare with the device's copy bandwidth or peak. They count
what one fused pass cannot avoid; an unfused implementation moves more, which is the
point of measuring it against the same figure.
"""

from __future__ import annotations

__all__ = ["sine_mlp_flops", "svf_exp_min_bytes", "warp_min_bytes"]


def warp_min_bytes(
    batch_voxels: int, channels: int, ndim: int, backward: bool, itemsize: int = 4
) -> int:
    """Warp of ``channels`` image volumes by an ``ndim``-channel displacement.

    Forward: read C image and ndim displacement volumes, write C. Backward adds: read
    grad_out (C), the image (C) and the displacement (ndim); write grad_disp (ndim);
    zero, then atomically read and write, the fp32 grad_image (3 C, 4 bytes whatever
    ``itemsize``; its final cast to a half-precision image is not counted).
    """
    volumes = 2 * channels + ndim
    if backward:
        volumes += 2 * channels + 2 * ndim
    nbytes = volumes * batch_voxels * itemsize
    if backward:
        nbytes += 3 * channels * batch_voxels * 4  # the grad_image accumulator is fp32
    return nbytes


def svf_exp_min_bytes(
    batch_voxels: int, ndim: int, steps: int, backward: bool, itemsize: int = 4
) -> int:
    """Scaling and squaring with ``steps`` squarings of an ``ndim``-channel field.

    The scaling reads and writes the field (2 ndim volumes); each squaring reads it once
    (its gathers hit cache) and writes it (2 ndim). The backward of each squaring reads
    grad_out, the field twice over (gathers and displacement) and writes grad_disp
    (4 ndim), and zeroes then atomically updates the fp32 grad_image (3 ndim); the
    scaling's backward is one more 2 ndim pass.
    """
    volumes = 2 * ndim * (steps + 1)
    if backward:
        volumes += 7 * ndim * steps + 2 * ndim
    return volumes * batch_voxels * itemsize


def sine_mlp_flops(in_features: int, widths: list[int] | tuple[int, ...], out_features: int) -> int:
    """Multiply-add FLOPs per point of an MLP ``in -> widths... -> out`` (2 per weight).

    A SIREN 3 -> 256 x 3 -> 1 (``widths = [256] * 4``: four sine layers, three 256 x 256
    matmuls) does 395,264 FLOPs a point. Sines and biases are not counted.
    """
    dims = [in_features, *widths, out_features]
    return 2 * sum(a * b for a, b in zip(dims[:-1], dims[1:]))
