"""Test fixtures: encodings whose build() breaks the contract in four ways."""

from torch import nn

from bench import hookimpl
from plugins.encodings.base import FieldEncoding


class NoKw(FieldEncoding):
    """no kwargs"""

    name = "bad.nokwargs"

    def build(self, in_features, out_features):
        return nn.Linear(in_features, out_features)


class NotMod(FieldEncoding):
    """returns a function"""

    name = "bad.notmodule"

    def build(self, in_features, out_features, **kwargs):
        return lambda x: x


class NoParams(FieldEncoding):
    """no params"""

    name = "bad.noparams"

    def build(self, in_features, out_features, **kwargs):
        return nn.Identity()


class Double(FieldEncoding):
    """float64"""

    name = "bad.double"

    def build(self, in_features, out_features, **kwargs):
        return nn.Linear(in_features, out_features).double()


@hookimpl
def bench_plugins():
    return [NoKw, NotMod, NoParams, Double]
