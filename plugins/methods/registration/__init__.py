"""Registration methods (kind ``method``, family ``registration``).

What a method's ``solve(problem, ctx)`` receives and returns: see ``problem.py``
(``Problem`` in, ``Result`` out: displacements in voxels on the fixed grid,
``warped(x) = moving(x + disp(x))``). Methods: ``displacement``, ``svf``, ``lddmm``
(``classical.py``), ``implicit`` and ``nodeo`` (``neural.py``), ``voxelmorph``
(``learned.py``), ``syn`` (``syn.py``, antspyx); the peers ``fireants.greedy`` and
``fireants.syn`` (``fireants_peer.py``, FireANTs) and ``elastix.bspline``
(``elastix_peer.py``, itk-elastix), optional like ``syn``.
"""

from __future__ import annotations

from bench import Method, hookimpl
from plugins.methods.registration.classical import LDDMM, SVF, Displacement
from plugins.methods.registration.elastix_peer import ElastixBSpline
from plugins.methods.registration.fireants_peer import FireANTsGreedy, FireANTsSyN
from plugins.methods.registration.learned import VoxelMorph
from plugins.methods.registration.neural import NODEO, Implicit
from plugins.methods.registration.syn import SyN

REGISTRATION_METHODS: list[type[Method]] = [
    Displacement,
    SVF,
    LDDMM,
    Implicit,
    NODEO,
    VoxelMorph,
    SyN,
    FireANTsGreedy,
    FireANTsSyN,
    ElastixBSpline,
]


@hookimpl
def bench_plugins() -> list[type[Method]]:
    return list(REGISTRATION_METHODS)
