"""Result files: the pictures, volumes and figures a cell keeps beside its numbers.

A task calls ``ctx.artifact(name, value)``; the value decides the file:

- a 2-D array (``(H, W)``), or ``(H, W, 3|4)`` colour -> PNG (8-bit; floats are
  scaled to the ``vmin``/``vmax`` given, else to the array's own range);
- an array with ``affine=`` (a 4x4 matrix: voxel -> world, mm), 2-D to 5-D -> NIfTI
  (``.nii.gz``, nibabel), e.g. a volume or a displacement field ``(X, Y, Z, 3)``;
  a 3-D array that is not colour and has no affine -> NIfTI with the identity affine;
- a matplotlib figure -> PNG (and SVG as well with ``svg=True``), then closed;
- ``bytes`` or ``str`` -> written as given; the name must carry the suffix.

Files land in ``RUN_DIR/files/<cell_id>/`` as they are made (so a cell that
fails later keeps them) and are listed in ``files.parquet`` (cell_id, name, kind,
path relative to the run folder, bytes). Names are one plain file name; a cell's
files together may not exceed the suite's ``files_limit_mb``.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.fileio import atomic_write_bytes

#: default limit on one cell's files together (suite setting ``files_limit_mb``)
DEFAULT_FILES_LIMIT_MB = 500.0

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,119}")  # fullmatch: "$" takes a "\n"
_KIND_SUFFIXES = {"png": (".png",), "nifti": (".nii.gz", ".nii"), "svg": (".svg",)}


class ArtifactError(ValueError):
    """A result file that cannot be written as asked (bad name, value, or size)."""


@dataclass(frozen=True)
class FileInfo:
    """One result file, as listed in ``files.parquet``."""

    name: str  # file name inside the cell's folder
    kind: str  # png | svg | nifti | bytes | text
    path: str  # relative to the run folder: files/<cell_id>/<name>
    bytes: int

    def as_tuple(self) -> tuple[str, str, str, int]:
        return (self.name, self.kind, self.path, self.bytes)


def check_name(name: Any) -> str:
    """A plain file name: letters, digits, ``_ . + -``; no separators, no ``..``."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or ".." in name:
        shown = repr(name)[:60]
        raise ArtifactError(
            f"result file name {shown} is not allowed: use one plain file name of at most "
            "120 letters, digits, '_', '.', '+' or '-' (no path separators, no '..')"
        )
    return name


def _with_suffix(name: str, kind: str) -> str:
    suffixes = _KIND_SUFFIXES[kind]
    if name.lower().endswith(suffixes):
        return name
    stem = name.rsplit(".", 1)[0] if "." in name and kind != "nifti" else name
    for other, their in _KIND_SUFFIXES.items():
        if other != kind and name.lower().endswith(their):
            raise ArtifactError(f"result file {name!r}: a {kind} file cannot end in {their[0]}")
    return stem + suffixes[0]


def _as_numpy(value: Any) -> np.ndarray | None:
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        return value.detach().cpu().float().numpy()
    return None


def _is_figure(value: Any) -> bool:
    return type(value).__name__ in ("Figure", "SubFigure") and hasattr(value, "savefig")


def png_bytes(
    image: np.ndarray, vmin: float | None = None, vmax: float | None = None, cmap: str | None = None
) -> bytes:
    """Encode a 2-D (grey) or ``(H, W, 3|4)`` array as an 8-bit PNG.

    Floats map ``[vmin, vmax]`` (default: the array's finite range) to 0..255; NaNs
    become 0. ``cmap`` (a matplotlib colormap name) colours a grey image.
    """
    from PIL import Image

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (3, 4))):
        raise ArtifactError(f"a PNG needs a 2-D or (H, W, 3|4) array, got shape {image.shape}")
    if image.size == 0:
        raise ArtifactError(f"a PNG needs a non-empty array, got shape {image.shape}")
    if image.dtype == np.uint8 and cmap is None and vmin is None and vmax is None:
        scaled = image
    else:
        data = image.astype(np.float64)
        finite = data[np.isfinite(data)]
        lo = float(vmin) if vmin is not None else (float(finite.min()) if finite.size else 0.0)
        hi = float(vmax) if vmax is not None else (float(finite.max()) if finite.size else 1.0)
        span = hi - lo if hi > lo else 1.0
        unit = np.clip(np.nan_to_num((data - lo) / span, nan=0.0), 0.0, 1.0)
        if cmap is not None and unit.ndim == 2:
            from matplotlib import colormaps

            unit = colormaps[cmap](unit)[..., :3]
        scaled = np.round(unit * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(scaled)).save(buffer, format="PNG")
    return buffer.getvalue()


def nifti_bytes(volume: np.ndarray, affine: Any = None) -> bytes:
    """Encode an array as gzipped NIfTI-1 with ``affine`` (default identity)."""
    import gzip

    import nibabel as nib

    if affine is None:
        affine = np.eye(4)
    else:
        as_array = _as_numpy(affine)
        affine = np.asarray(affine if as_array is None else as_array, dtype=np.float64)
    if affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise ArtifactError(f"a NIfTI affine must be a finite 4x4 matrix, got shape {affine.shape}")
    volume = np.asarray(volume)
    if volume.ndim < 2 or volume.ndim > 5:
        raise ArtifactError(f"a NIfTI volume needs 2 to 5 dimensions, got shape {volume.shape}")
    if volume.dtype == np.float64:
        volume = volume.astype(np.float32)
    if volume.dtype == bool:
        volume = volume.astype(np.uint8)
    image = nib.Nifti1Image(volume, affine)
    image.header.set_xyzt_units("mm")
    if volume.ndim == 5:  # (x, y, z, t, component): a vector per voxel, as NIfTI-1 says
        image.header.set_intent("vector")
    return gzip.compress(image.to_bytes(), compresslevel=6, mtime=0)


def encode(
    name: str,
    value: Any,
    *,
    affine: Any = None,
    svg: bool = False,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str | None = None,
) -> list[tuple[str, str, bytes]]:
    """Turn a value into ``(file name, kind, content)``: one file, or PNG and SVG."""
    check_name(name)
    if _is_figure(value):
        buffer = io.BytesIO()
        value.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        out = [(_with_suffix(name, "png"), "png", buffer.getvalue())]
        if svg:
            svg_buffer = io.BytesIO()
            value.savefig(svg_buffer, format="svg", bbox_inches="tight")
            out.append((_with_suffix(name, "svg"), "svg", svg_buffer.getvalue()))
        import matplotlib.pyplot as plt

        plt.close(value)
        return out
    if isinstance(value, (bytes, bytearray, str)):
        if "." not in name.strip("."):
            raise ArtifactError(
                f"result file {name!r}: bytes and text keep the name as given, so it needs a "
                "suffix (e.g. 'table.csv')"
            )
        data = value.encode() if isinstance(value, str) else bytes(value)
        return [(name, "text" if isinstance(value, str) else "bytes", data)]
    array = _as_numpy(value)
    if array is None:
        raise ArtifactError(
            f"result file {name!r}: cannot save a {type(value).__name__}; give an array or "
            "tensor, a matplotlib figure, bytes or text"
        )
    colour = array.ndim == 3 and array.shape[-1] in (3, 4)
    if affine is not None or (array.ndim >= 3 and not colour):
        return [(_with_suffix(name, "nifti"), "nifti", nifti_bytes(array, affine))]
    return [(_with_suffix(name, "png"), "png", png_bytes(array, vmin, vmax, cmap))]


class FileStore:
    """The folder of one cell's result files, with its size limit."""

    def __init__(self, folder: Path | None, run_dir: Path | None, limit_bytes: int) -> None:
        self.folder = folder
        self.run_dir = run_dir
        self.limit_bytes = int(limit_bytes)
        self.sizes: dict[str, int] = {}  # bytes of each file kept, by name

    @property
    def used(self) -> int:
        """Bytes of the files kept: one saved again under its name counts once."""
        return sum(self.sizes.values())

    def save(self, name: str, value: Any, **options: Any) -> list[FileInfo]:
        files = encode(name, value, **options)
        size = sum(len(data) for _, _, data in files)
        replaced = sum(self.sizes.get(file_name, 0) for file_name, _, _ in files)
        if self.used - replaced + size > self.limit_bytes:
            raise ArtifactError(
                f"result file {files[0][0]!r} ({size / 2**20:.1f} MiB) would take this cell's "
                f"files past its limit of {self.limit_bytes / 2**20:.0f} MiB "
                f"({self.used / 2**20:.1f} MiB already written); raise the suite's "
                "files_limit_mb or save less"
            )
        if self.folder is None:  # no run folder (a task run by hand): count, keep nothing
            self.sizes.update((n, len(d)) for n, _, d in files)
            return [FileInfo(n, k, "", len(d)) for n, k, d in files]
        self.folder.mkdir(parents=True, exist_ok=True)
        infos = []
        for file_name, kind, data in files:
            path = self.folder / file_name
            atomic_write_bytes(path, data, sync=False)
            rel = path.relative_to(self.run_dir) if self.run_dir else path
            infos.append(FileInfo(file_name, kind, str(rel), len(data)))
            self.sizes[file_name] = len(data)
        return infos
