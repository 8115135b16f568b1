"""The slices ``synthesis.t1_to_t2`` trains and tests on: two sources, one layout.

Each loader returns ``{split: {"t1", "t2", "mask", "z"}}``: axial slices (N, 1, H, W)
of T1, T2 (float32 in [0, 1]) and the brain mask (bool), cropped to the mask's box
(2 voxels of margin), with ``z`` the slices' indices in the volume.

- ``simulated_slices``: nilearn's MNI152 T1 and a T2 SIMULATED from its tissue maps;
  every ``test_every``-th slice is held out (splits ``train``, ``test``).
- ``icbm_slices``: the real ICBM 2009c T1w/T2w pair (``plugins.data.icbm``), split
  into slabs (``slab_split``: ``train``, ``val``, ``test``), with ``gap`` slices
  between a held-out slab and the training slices, and intensities scaled by the
  99th percentile inside the mask of the TRAINING slices only.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

#: the repeating pattern of slabs along z, bottom to top (``slab_split``)
SLAB_PATTERN = ("train", "train", "test", "train", "train", "val")
SPLITS = ("train", "val", "test")


def kept_slices(mask: np.ndarray) -> np.ndarray:
    """The axial slices whose brain area is at least 20% of the largest."""
    area = mask.sum(axis=(0, 1))
    return np.flatnonzero(area >= 0.2 * area.max())


def slab_split(kept: np.ndarray, slab: int, gap: int) -> dict[str, np.ndarray]:
    """Cut the consecutive slices ``kept`` into slabs of ``slab`` slices, bottom to top,
    assigned by ``SLAB_PATTERN`` (train, train, test, train, train, val, repeated); a
    training slice closer than ``gap + 1`` slices to any test or validation slice is
    dropped, so no training slice lies within ``gap`` slices of a held-out one."""
    if slab < 1 or gap < 0:
        raise ValueError(f"slab {slab} must be >= 1 and gap {gap} >= 0")
    kept = np.asarray(kept)
    role = np.array([SLAB_PATTERN[(i // slab) % len(SLAB_PATTERN)] for i in range(len(kept))])
    held = kept[role != "train"]
    out = {name: kept[role == name] for name in SPLITS}
    if len(held):
        distance = np.abs(out["train"][:, None] - held[None, :]).min(axis=1)
        out["train"] = out["train"][distance > gap]
    if not all(len(out[name]) for name in SPLITS):
        sizes = {name: len(out[name]) for name in SPLITS}
        raise ValueError(f"slab {slab}, gap {gap} on {len(kept)} slices leaves {sizes}")
    return out


def _box(mask: np.ndarray) -> tuple[slice, slice]:
    xs, ys = np.flatnonzero(mask.any(axis=(1, 2))), np.flatnonzero(mask.any(axis=(0, 2)))
    return slice(max(xs[0] - 2, 0), xs[-1] + 3), slice(max(ys[0] - 2, 0), ys[-1] + 3)


def _stack(
    t1: np.ndarray, t2: np.ndarray, mask: np.ndarray, z: np.ndarray
) -> dict[str, torch.Tensor]:
    box = _box(mask)

    def stack(vol: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.stack([vol[box][:, :, k] for k in z])[:, None].copy())

    return {
        "t1": stack(t1),
        "t2": stack(t2),
        "mask": stack(mask.astype(np.float32)) > 0.5,
        "z": torch.from_numpy(np.asarray(z, dtype=np.int64)),
    }


@functools.lru_cache(maxsize=2)
def simulated_slices(resolution: int, test_every: int) -> dict[str, Any]:
    """Normalised T1 and SIMULATED T2 axial slices, split by slice (cached: ~5 s of
    nilearn loading; callers only read the tensors)."""
    from plugins.data import mni152

    t1 = mni152.load("template", resolution).data
    t2 = mni152.simulated_t2(resolution).data
    mask = mni152.load("mask", resolution).data > 0.5

    def normalise(v: np.ndarray) -> np.ndarray:
        return np.clip(v / np.percentile(v[mask], 99), 0.0, 1.0).astype(np.float32)

    t1, t2 = normalise(t1), normalise(t2)
    keep = kept_slices(mask)
    test = keep[::test_every][1:]  # every test_every-th kept slice, not the first
    train = np.setdiff1d(keep, test)
    return {split: _stack(t1, t2, mask, idx) for split, idx in (("train", train), ("test", test))}


@functools.lru_cache(maxsize=2)
def icbm_slices(resolution: int, slab: int, gap: int) -> dict[str, Any]:
    """The real ICBM 2009c T1w/T2w axial slices, split into slabs (``slab_split``) and
    scaled by each contrast's 99th percentile inside the mask of the training slices
    (clipped to [0, 1]), so nothing of the held-out slabs sets the scale."""
    from plugins.data import icbm

    t1, t2 = icbm.load("t1", resolution).data, icbm.load("t2", resolution).data
    mask = icbm.load("mask", resolution).data > 0.5
    split = slab_split(kept_slices(mask), slab, gap)
    train_mask = np.zeros_like(mask)
    train_mask[:, :, split["train"]] = mask[:, :, split["train"]]

    def normalise(v: np.ndarray) -> np.ndarray:
        return np.clip(v / np.percentile(v[train_mask], 99), 0.0, 1.0).astype(np.float32)

    t1, t2 = normalise(t1), normalise(t2)
    return {name: _stack(t1, t2, mask, split[name]) for name in SPLITS}
