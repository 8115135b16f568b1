"""2-D images for the neural-fields tasks, all offline.

``load_image(name, size, color)`` returns a float32 array in [0, 1], ``(size, size)``
for grey or ``(size, size, 3)`` for RGB: the centred square crop of the source,
resized with anti-aliasing (scikit-image) when ``size`` is below the crop's side.

Sources: scikit-image's shipped images (``SKIMAGE_IMAGES``), ``mni152_slice`` (the
middle axial slice of nilearn's MNI152 T1 at 1 mm, scaled by its maximum), or the path
of a PNG/JPEG/TIFF or NIfTI file (a 3-D NIfTI gives its middle axial slice).

``describe_image(name)`` gives ``(side, is_rgb)`` without resizing, so a suite can be
validated (unknown name, missing file, RGB given to a grey task, size above the source)
before anything runs.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from bench import did_you_mean

#: scikit-image images that ship inside the package (no download), grey or RGB
SKIMAGE_IMAGES = (
    "camera",
    "astronaut",
    "coffee",
    "chelsea",
    "cat",
    "rocket",
    "coins",
    "moon",
    "page",
    "text",
    "brick",
    "grass",
    "gravel",
    "clock",
    "immunohistochemistry",
    "colorwheel",
)
COLORS = ("grey", "rgb", "luminance")
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_path(name: str) -> bool:
    """A name with a slash or a file suffix is a path, not a built-in image."""
    return "/" in name or "\\" in name or Path(name).suffix != ""


def _is_nifti(path: str) -> bool:
    return path.endswith(NIFTI_SUFFIXES)


@functools.lru_cache(maxsize=16)
def _source(name: str) -> np.ndarray:
    """The full image as float32 in [0, 1]: (H, W) or (H, W, 3). Raises ValueError."""
    if name == "mni152_slice":
        from plugins.data import mni152

        slice_ = mni152.axial_slice(mni152.load("template", 1).data)
        return (slice_ / max(float(slice_.max()), 1e-12)).astype(np.float32)
    if not is_path(name):
        if name not in SKIMAGE_IMAGES:
            hint = did_you_mean(name, [*SKIMAGE_IMAGES, "mni152_slice"])
            raise ValueError(
                f"unknown image {name!r}{hint} (built in: {', '.join(SKIMAGE_IMAGES)}, "
                "mni152_slice; or give the path of a PNG/NIfTI file)"
            )
        import skimage.data

        data = np.asarray(getattr(skimage.data, name)())
    else:
        path = Path(name).expanduser()
        if not path.is_file():
            raise ValueError(f"image file {name!r} does not exist")
        try:
            data = _read_file(str(path))
        except Exception as exc:  # noqa: BLE001 - any reader failure is "unreadable"
            raise ValueError(f"image file {name!r} is not readable: {exc}") from None
    return _to_unit(data)


def _read_file(path: str) -> np.ndarray:
    if _is_nifti(path):
        import nibabel as nib

        data = np.asarray(nib.load(path).get_fdata(), dtype=np.float64)
        if data.ndim == 4 and data.shape[3] == 1:
            data = data[..., 0]
        if data.ndim == 3:
            data = np.rot90(data[:, :, data.shape[2] // 2])
        if data.ndim != 2:
            raise ValueError(f"expected a 2-D or 3-D volume, got shape {data.shape}")
        return np.ascontiguousarray(data)
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        if img.mode in ("RGBA", "P", "CMYK", "YCbCr"):
            img = img.convert("RGB")
        return np.asarray(img)


def _to_unit(data: np.ndarray) -> np.ndarray:
    if data.ndim == 3 and data.shape[2] == 4:
        data = data[..., :3]
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[..., 0]
    if data.ndim not in (2, 3) or (data.ndim == 3 and data.shape[2] != 3):
        raise ValueError(f"expected a grey or RGB image, got shape {data.shape}")
    if data.dtype == np.uint8:
        out = data.astype(np.float32) / 255.0
    elif data.dtype == np.uint16:
        out = data.astype(np.float32) / 65535.0
    else:
        out = data.astype(np.float32)
        lo, hi = float(out.min()), float(out.max())
        out = (out - lo) / max(hi - lo, 1e-12)
    if (
        data.ndim == 3
        and np.allclose(out[..., 0], out[..., 1])
        and np.allclose(out[..., 0], out[..., 2])
    ):
        out = out[..., 0]  # an RGB file holding a grey image
    out.setflags(write=False)
    return out


def describe_image(name: str) -> tuple[int, bool]:
    """``(side of the centred square crop, is RGB)``; raises ValueError for a bad name."""
    data = _source(name)
    return min(data.shape[:2]), data.ndim == 3


def check_image(name: str, size: int, color: str) -> str | None:
    """Why ``(name, size, color)`` cannot be loaded, or None."""
    try:
        side, rgb = describe_image(name)
    except ValueError as exc:
        return str(exc)
    if size > side:
        return f"size {size} is larger than image {name!r} ({side} px on its shorter side)"
    if color == "grey" and rgb:
        return (
            f"image {name!r} is RGB and the task is in grey mode "
            "(color: rgb fits all three channels, color: luminance converts it)"
        )
    if color == "rgb" and not rgb:
        return f"image {name!r} is grey and the task asks for rgb (use color: grey)"
    return None


def load_image(name: str, size: int, color: str = "grey") -> np.ndarray:
    """The image as float32 in [0, 1]: ``(size, size)`` grey or ``(size, size, 3)`` RGB."""
    reason = check_image(name, size, color)
    if reason:
        raise ValueError(reason)
    data = _source(name)
    if color == "luminance" and data.ndim == 3:
        from skimage.color import rgb2gray

        data = rgb2gray(data).astype(np.float32)
    h, w = data.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = data[top : top + side, left : left + side]
    if side != size:
        from skimage.transform import resize

        crop = resize(crop, (size, size) + crop.shape[2:], anti_aliasing=True, order=1)
    return np.ascontiguousarray(np.clip(crop, 0.0, 1.0), dtype=np.float32)
