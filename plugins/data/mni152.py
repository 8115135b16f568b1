"""nilearn's MNI152 2009 template and tissue maps, as float32 arrays with their affine.

Shipped inside nilearn (nothing is downloaded): T1 ``template``, grey- and
white-matter probability maps ``gm`` and ``wm``, and the ``mask`` of the brain, at
1 mm (197 x 233 x 189) and 2 mm (99 x 117 x 95). CSF is not shipped: it is taken as
the mask's remainder, ``clip(mask - gm - wm, 0, 1)``. Arrays are indexed (x, y, z)
in voxels; ``affine`` maps voxels to millimetres (RAS).

``simulated_t2`` makes a T2-like contrast from the tissue maps (CSF bright, WM dark,
a smooth bias field, noise): it is simulated, and every result built on it says so.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

#: the maps this module gives, by name
MAPS = ("template", "gm", "wm", "csf", "mask")
RESOLUTIONS = (1, 2)
#: T2-like intensities per tissue (relative): CSF bright, GM mid, WM dark, background 0
T2_LEVELS = {"csf": 1.0, "gm": 0.55, "wm": 0.3}


@dataclass(frozen=True)
class Volume:
    """A 3-D array (x, y, z) and its 4x4 voxel-to-mm affine."""

    data: np.ndarray
    affine: np.ndarray

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))


def _check_resolution(resolution: int) -> None:
    if resolution not in RESOLUTIONS:
        raise ValueError(f"MNI152 resolution {resolution!r}: nilearn ships 1 and 2 (mm)")


@functools.lru_cache(maxsize=8)
def _load(name: str, resolution: int) -> Volume:
    import warnings

    from nilearn import datasets

    loaders = {
        "template": datasets.load_mni152_template,
        "gm": datasets.load_mni152_gm_template,
        "wm": datasets.load_mni152_wm_template,
        "mask": datasets.load_mni152_brain_mask,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = loaders[name](resolution=resolution)
    data = np.clip(np.asarray(image.get_fdata(), dtype=np.float32), 0.0, None)
    data.setflags(write=False)
    return Volume(data, np.asarray(image.affine, dtype=np.float64))


def load(name: str, resolution: int = 2) -> Volume:
    """One map (``template``, ``gm``, ``wm``, ``csf``, ``mask``) at 1 or 2 mm.

    The arrays are shared and read-only: copy before changing them.
    """
    _check_resolution(resolution)
    if name not in MAPS:
        raise ValueError(f"unknown MNI152 map {name!r} (maps: {', '.join(MAPS)})")
    if name == "csf":
        mask, gm, wm = (_load(n, resolution) for n in ("mask", "gm", "wm"))
        csf = np.clip(mask.data - gm.data - wm.data, 0.0, 1.0) * (mask.data > 0.5)
        csf.setflags(write=False)
        return Volume(csf.astype(np.float32), mask.affine)
    return _load(name, resolution)


def labels(resolution: int = 2) -> Volume:
    """A hard label map: 0 background, 1 CSF, 2 GM, 3 WM (the most probable tissue
    inside the mask)."""
    mask = load("mask", resolution)
    stack = np.stack([load(n, resolution).data for n in ("csf", "gm", "wm")])
    hard = (np.argmax(stack, axis=0) + 1) * (mask.data > 0.5)
    return Volume(hard.astype(np.int16), mask.affine)


def simulated_t2(
    resolution: int = 2, *, bias: float = 0.1, noise: float = 0.01, seed: int = 0
) -> Volume:
    """A T2-like image SIMULATED from the tissue maps: sum of tissue probability times
    its level (CSF 1.0, GM 0.55, WM 0.3), times a smooth multiplicative bias field of
    relative amplitude ``bias`` (a random low-order polynomial), plus Gaussian noise of
    standard deviation ``noise`` inside the mask."""
    rng = np.random.default_rng(seed)
    maps = {n: load(n, resolution).data for n in ("csf", "gm", "wm")}
    image = sum(T2_LEVELS[n] * maps[n] for n in maps)
    mask = load("mask", resolution).data > 0.5
    axes = [np.linspace(-1.0, 1.0, s, dtype=np.float32) for s in image.shape]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    c = rng.normal(size=7)
    field = c[0] * x + c[1] * y + c[2] * z + c[3] * x * y + c[4] * y * z + c[5] * x * z
    field += c[6] * (x**2 + y**2 + z**2 - 1.0)
    field = field / max(float(np.abs(field).max()), 1e-6)
    image = image * (1.0 + bias * field)
    image = image + noise * rng.normal(size=image.shape).astype(np.float32) * mask
    return Volume(np.clip(image, 0.0, None).astype(np.float32), load("mask", resolution).affine)


def axial_slice(volume: np.ndarray, index: int | None = None) -> np.ndarray:
    """One axial slice (fixed z) as a 2-D array (x, y), rotated so that anterior is up
    when shown as an image; ``index`` defaults to the slice through the middle."""
    z = volume.shape[2] // 2 if index is None else int(index)
    if not 0 <= z < volume.shape[2]:
        raise ValueError(f"axial slice {z} is outside 0..{volume.shape[2] - 1}")
    return np.ascontiguousarray(np.rot90(volume[:, :, z]))
