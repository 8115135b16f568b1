"""Neural-field encodings (issue 9): coordinate networks mapping (N, d) to (N, out).

``relu``, ``positional``, ``fourier`` (ReLU MLPs on raw / encoded coordinates),
``siren`` (runs through any ``sine_mlp.*`` backend), ``bacon`` (band-limited, one
output per layer) and ``hashgrid`` (multiresolution hash encoding). Coordinates
are expected in [-1, 1].
"""

from __future__ import annotations

from bench import Encoding, hookimpl
from plugins.encodings.bacon import BaconField
from plugins.encodings.hashgrid import HashGridField
from plugins.encodings.mlp import FourierField, PositionalField, ReluField
from plugins.encodings.siren import SirenField

ENCODINGS: list[type[Encoding]] = [
    ReluField,
    PositionalField,
    FourierField,
    SirenField,
    BaconField,
    HashGridField,
]


@hookimpl
def bench_plugins() -> list[type[Encoding]]:
    return list(ENCODINGS)
