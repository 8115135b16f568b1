"""The eight architectures: shapes, trajectories, inverses, gradients, Lipschitz bounds."""

from __future__ import annotations

import pytest
import torch

from bench import ParamError
from bench.testing import build_plugin
from plugins.architectures import ARCHITECTURES
from plugins.architectures.iresnet import IResNet
from plugins.architectures.node import NeuralODE
from plugins.architectures.residual import ResNetShared
from plugins.architectures.revnet import RevNet
from plugins.tasks.architectures.flow import jacobians, power_iteration_lipschitz

pytestmark = pytest.mark.usefixtures("frozen_heap")

NAMES = [cls.name for cls in ARCHITECTURES]


def test_eight_architectures_registered() -> None:
    from bench import Registry, get_plugin_manager

    registry = Registry(get_plugin_manager())
    assert registry.names("architecture") == sorted(
        [
            "mlp",
            "resnet",
            "resnet_shared",
            "resnet_symmetric",
            "revnet",
            "iresnet",
            "lipschitz",
            "node",
        ]
    )


@pytest.mark.parametrize("cls", ARCHITECTURES, ids=NAMES)
def test_trajectory_ends_at_output(cls) -> None:
    torch.manual_seed(0)
    net = build_plugin(cls, width=4, depth=5, hidden=8).build()
    x = torch.randn(7, 4)
    traj = net.trajectory(x)
    assert traj.shape == (6, 7, 4)
    # the same float32 operations in the same order, except node's solver, which is
    # called with other output times (same steps): a few ulp
    assert torch.allclose(traj[0], x)
    assert torch.allclose(traj[-1], net(x), atol=1e-6)


@pytest.mark.parametrize(
    ("cls", "values", "tol"),
    [
        # exact inverse; fp32 rounding of 2 x 6 half-steps on O(1) values: ~1e-6
        (RevNet, {}, 1e-5),
        # fixed point to inverse_tol 1e-7 with c = 0.9: error <= c/(1-c) 1e-7 = 9e-7 a block
        (IResNet, {}, 1e-5),
        # rk4 with h = 1/32, forward then backward: O(h^4 Lip^5) ~ 1e-6, plus fp32 rounding
        (NeuralODE, {"depth": 32}, 1e-5),
    ],
    ids=["revnet", "iresnet", "node"],
)
def test_inverse_to_tolerance(cls, values, tol) -> None:
    torch.manual_seed(1)
    net = build_plugin(cls, **{"width": 4, "depth": 6, "hidden": 16, **values}).build()
    x = torch.randn(64, 4)
    with torch.no_grad():
        err = (net.inverse(net(x)) - x).abs().max()
    assert err < tol


def test_iresnet_series_is_exact_for_linear_blocks() -> None:
    # Neumann series of (I + g)^-1 for linear g (no activation, no biases) with
    # ||g|| <= 0.5: the remainder after 40 terms is <= 0.5^41 / 0.5 |y| ~ 1e-12; fp32
    # rounding dominates (1e-6)
    torch.manual_seed(2)
    net = IResNet(
        width=4, depth=3, activation="identity", coeff=0.5, inverse="series", series_terms=40
    ).build()
    x = torch.randn(32, 4)
    with torch.no_grad():
        for block in net.blocks:
            block.inner.bias.zero_()
            block.outer.bias.zero_()
        assert (net.inverse(net(x)) - x).abs().max() < 1e-5


def test_iresnet_series_is_approximate_for_nonlinear_blocks() -> None:
    # with tanh the composition series is not the inverse: the error stays well above
    # the fixed point's (measured ~1e-2 at c = 0.9); the option's documented limit
    torch.manual_seed(2)
    net = IResNet(width=4, depth=3, coeff=0.9, inverse="series", series_terms=40).build()
    with torch.no_grad():
        net.blocks[0].inner.bias.fill_(0.5)
        x = torch.randn(32, 4)
        assert (net.inverse(net(x)) - x).abs().max() > 1e-4


def test_iresnet_fixed_point_rate_at_most_c() -> None:
    # Banach: ||x_{n+1} - x*|| = ||g(x_n) - g(x*)|| <= c ||x_n - x*|| for every point;
    # float64 so the ratio is clean down to 1e-12. c bounds the rate; the observed rate
    # is the spectral radius of the linearised g at x*, often well below c
    torch.manual_seed(3)
    coeff = 0.8
    net = IResNet(width=4, depth=2, coeff=coeff).build()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(10.0)  # raw weights above the bounds: ||W1|| = 1, ||W2|| = c exactly
    y = 0.3 * torch.randn(50, 4)
    errors = net.fixed_point_errors(0, y, iterations=60)
    ratios = [b / a for a, b in zip(errors, errors[1:]) if a > 1e-12]
    assert len(ratios) > 10
    assert max(ratios) <= coeff + 1e-9


def test_resnet_backward_euler_inverse_is_first_order() -> None:
    # forward Euler then backward Euler: O(h^2) per step, O(h) in all; 4x the depth at
    # the same total time should cut the error ~4x (0.25); 0.35 leaves room for the
    # higher-order terms at depth 16
    torch.manual_seed(4)
    errs = []
    for depth in (16, 64):
        torch.manual_seed(4)
        net = ResNetShared(width=2, depth=depth, hidden=16).build()
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(2.0)  # a flow with some curvature
            x = torch.randn(200, 2)
            errs.append(float((net.inverse(net(x)) - x).abs().max()))
    assert errs[1] / errs[0] < 0.35


def test_revnet_gradient_matches_ordinary_backprop() -> None:
    # float64: recomputing inputs through the inverse costs ~1e-15 per block
    torch.manual_seed(5)
    saving = RevNet(width=6, depth=10, hidden=12).build().double()
    plain = RevNet(width=6, depth=10, hidden=12, memory_saving=False).build().double()
    plain.load_state_dict(saving.state_dict())
    x = torch.randn(20, 6, dtype=torch.float64)
    grads = []
    for net in (saving, plain):
        xi = x.clone().requires_grad_(True)
        loss = (net(xi) ** 3).sum()
        grads.append(torch.autograd.grad(loss, [xi, *net.parameters()]))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-11)


def test_revnet_keeps_only_its_output_for_backward() -> None:
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    torch.manual_seed(6)
    net = RevNet(width=8, depth=32, hidden=16).build()
    x = torch.randn(10, 8, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(x).sum()
    # only the output (10 x 8) is saved, not the 32 blocks' activations
    assert sum(t.numel() for t in saved if t.shape == (10, 8)) == 80
    assert sum(t.numel() for t in saved) == 80


def test_power_iteration_finds_known_singular_value() -> None:
    # a linear map with singular values 3, 1, 0.5: the iteration converges at rate
    # (1/3)^2 per step; 40 steps reach fp64 precision
    u, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    a = u @ torch.diag(torch.tensor([3.0, 1.0, 0.5], dtype=torch.float64)) @ v.T
    sigma = power_iteration_lipschitz(lambda x: x @ a.T, torch.randn(4, 3, dtype=torch.float64), 40)
    assert torch.allclose(sigma, torch.full((4,), 3.0, dtype=torch.float64), rtol=1e-10)


@pytest.mark.parametrize("cls", ARCHITECTURES, ids=NAMES)
def test_lipschitz_bound_above_estimates(cls) -> None:
    # The bound multiplies per-block spectral norms; it must lie above every local
    # estimate: power iteration (lower bound) <= exact ||J|| by SVD <= bound
    torch.manual_seed(7)
    net = build_plugin(cls, width=4, depth=4, hidden=8).build()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(1.5)
    x = 2 * torch.randn(200, 4)
    exact = torch.linalg.matrix_norm(jacobians(net.flow, x), ord=2)
    estimate = power_iteration_lipschitz(net.flow, x, iterations=50)
    assert (estimate <= exact * (1 + 1e-4)).all()  # fp32 Rayleigh quotient rounding
    assert float(exact.max()) <= net.lipschitz_bound() * (1 + 1e-5)


def test_lipschitz_constraint_holds_per_block() -> None:
    torch.manual_seed(8)
    from plugins.architectures.residual import Lipschitz

    net = Lipschitz(width=4, depth=3, hidden=8, bound=0.5).build()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(10.0)  # raw weights far above the bound: the constraint scales them
    for block in net.blocks:
        # exact norms: sqrt(0.5)^2, fp32 SVD rounding
        assert float(block.lipschitz_bound().detach()) <= 0.5 * (1 + 1e-5)
    assert net.lipschitz_bound() <= (1 + 0.5 / 3) ** 3 * (1 + 1e-5)


@pytest.mark.parametrize(
    ("cls", "values", "words"),
    [
        (RevNet, {"width": 3}, "odd"),
        (IResNet, {"coeff": 1.0}, "< 1"),
        (ResNetShared, {"depth": 0}, ">= 1"),
        (NeuralODE, {"solver": "rk5"}, "unknown solver"),
    ],
)
def test_bad_values_refused(cls, values, words) -> None:
    with pytest.raises(ParamError, match=words):
        build_plugin(cls, **values)


@pytest.mark.parametrize("adjoint", [False, True])
def test_node_gradient_direct_and_adjoint_agree(adjoint) -> None:
    # both differentiate the same rk4 solve; the adjoint's backward rk4 solve of the
    # augmented state differs from the discrete gradient by O(h^4) ~ 1e-7 at h = 1/16
    torch.manual_seed(9)
    nets = [
        build_plugin(NeuralODE, width=2, depth=16, hidden=8, adjoint=a).build()
        for a in (False, adjoint)
    ]
    nets[1].load_state_dict(nets[0].state_dict())
    x = torch.randn(10, 2)
    grads = [torch.autograd.grad(n(x).pow(2).sum(), list(n.parameters())) for n in nets]
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_spectral_penalty_against_numpy_svd() -> None:
    import numpy as np

    from plugins.architectures.residual import Lipschitz

    torch.manual_seed(10)
    net = Lipschitz(width=3, depth=2, hidden=5, mode="spectral_penalty", bound=0.5, weight=2.0)
    net = net.build()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)
    expected = 0.0
    for block in net.blocks:
        s1 = np.linalg.svd(block.inner.weight.detach().double().numpy(), compute_uv=False)[0]
        s2 = np.linalg.svd(block.outer.weight.detach().double().numpy(), compute_uv=False)[0]
        expected += max(s1 * s2 - 0.5, 0.0) ** 2
    # float32 SVD against float64 LAPACK: 1e-5 relative
    assert float(net.penalty(torch.zeros(1, 3)).detach()) == pytest.approx(2.0 * expected, rel=1e-5)


def test_gradient_penalty_zero_below_bound_positive_above() -> None:
    from plugins.architectures.residual import Lipschitz

    torch.manual_seed(11)
    x = torch.randn(16, 3)
    loose = Lipschitz(width=3, depth=2, mode="gradient_penalty", bound=1e3).build()
    assert float(loose.penalty(x).detach()) == 0.0  # ||J^T u|| <= ||W2|| ||W1|| << 1e3
    tight = Lipschitz(width=3, depth=2, mode="gradient_penalty", bound=1e-6).build()
    penalty = tight.penalty(x)
    assert float(penalty.detach()) > 0.0
    penalty.backward()  # it trains the weights: gradients reach them
    assert all(p.grad is not None for p in tight.parameters() if p.dim() == 2)


def test_symmetric_penalty_is_the_round_trip_error() -> None:
    from plugins.architectures.residual import ResNetSymmetric

    torch.manual_seed(12)
    x = torch.randn(20, 2)
    data = ResNetSymmetric(weight=3.0).build()
    round_trip = data.inverse(data(x)) - x
    expected = 3.0 * round_trip.pow(2).sum(dim=1).mean()
    assert torch.allclose(data.penalty(x), expected)
    domain = ResNetSymmetric(variant="domain", weight=1.0).build()
    seen = []

    def sampler(n: int) -> torch.Tensor:
        seen.append(n)
        return torch.zeros(n, 2)

    domain.penalty(x, sampler)
    assert seen == [20]  # as many domain points as the batch


def test_symmetric_fixed_point_inverse_is_exact_where_euler_is_not() -> None:
    from plugins.architectures.residual import ResNetSymmetric

    torch.manual_seed(13)
    x = 2.0 * torch.randn(50, 2)
    euler = ResNetSymmetric().build()
    assert euler.inverse_method == "euler"  # the published default is unchanged
    fixed = ResNetSymmetric(inverse="fixed_point").build()
    fixed.load_state_dict(euler.state_dict())
    with torch.no_grad():
        q = euler.h * float(euler.block(0).lipschitz_bound())
        assert q < 1.0  # the fixed point contracts (Banach) at this initialisation
        # backward Euler misses by h^2 J_f f per step: well above float32 round-off
        assert float((euler.inverse(euler(x)) - x).abs().max()) > 1e-4
        # stopped at a change < 1e-7: error <= q/(1-q) 1e-7 per step, plus fp32
        # rounding of 8 steps on |x| ~ 6 (u |x| ~ 4e-7 each): 1e-5 leaves 2x+ margin
        assert float((fixed.inverse(fixed(x)) - x).abs().max()) < 1e-5
    # the invertibility loss is backward Euler's round trip whichever inverse is used
    assert torch.equal(fixed.penalty(x), euler.penalty(x))


def test_symmetric_inverse_choice_is_checked() -> None:
    from plugins.architectures.residual import ResidualNet, ResNetSymmetric

    with pytest.raises(ParamError, match="inverse"):
        ResNetSymmetric(inverse="newton")
    with pytest.raises(ValueError, match="fixed_point"):
        ResidualNet(2, 2, 4, "tanh", 0.5, inverse="newton")


def test_a_module_short_of_the_flow_contract_is_named_with_what_it_lacks():
    """A user architecture whose build() returns a plain module failed inside torch
    ('Sequential' object has no attribute 'width', at torch's module.py), one with the
    wrong width in a matmul: the check names the plugin and the contract."""
    import pytest
    import torch

    from bench.testing import default_registry
    from plugins.architectures.common import check_flow_module

    wanted = r"returned a Sequential without width, depth, step, flow, trajectory, penalty"
    with pytest.raises(ValueError, match=r"my\.net\.build\(\) " + wanted):
        check_flow_module("my.net", torch.nn.Sequential(torch.nn.Linear(2, 2)), None)
    with pytest.raises(ValueError, match="not a torch nn.Module"):
        check_flow_module("my.net", object(), None)
    net = default_registry().get("architecture", "resnet")(width=4, depth=2, hidden=4).build()
    check_flow_module("resnet", net, "approximate")  # a shipped one passes
    with pytest.raises(ValueError, match="without fixed_point_errors: .* iterative inverse"):
        check_flow_module("my.iter", net, "iterative")  # an iterative inverse's members
    net.width = 3  # says 3, maps 4 to 4
    with pytest.raises(ValueError, match=r"\(N, width\) -> \(N, width\), and its width is 3"):
        check_flow_module("my.net", net, None)


def test_a_solver_the_holders_step_cannot_reach_is_refused(tmp_path):
    """node steps its solver time/depth and nodeo its step_size unless the suite sets the
    solver's own; a fixed-step solver whose step is not called step_size ran silently at
    its own step beside others at the holder's (a user audit). Refused at validation,
    unless the suite sets that solver's parameters itself (then its step is the suite's,
    a review); a solver with no parameters has nothing to set. The recorded columns and
    cell ids are as before (recording the holder's step as the solver's changed them and
    broke pairing across a depth sweep: a review)."""
    import textwrap

    import yaml

    from bench.suite import SuiteError, load_suite

    (tmp_path / "own.py").write_text(
        textwrap.dedent('''
        import torch
        from bench import Param, Solver, hookimpl

        class HeunDt(Solver):
            """Heun, fixed step named dt."""
            name = "mylab.heun_dt"
            order = 2
            params = {"dt": Param(0.05, low=0.0, low_open=True)}

            def odeint(self, func, y0, t, **options):
                return torch.stack([y0] * len(t))

        class Exact(Solver):
            """No step to set."""
            name = "mylab.exact"
            order = 4

            def odeint(self, func, y0, t, **options):
                return torch.stack([y0] * len(t))

        @hookimpl
        def bench_plugins():
            return [HeunDt, Exact]
    ''')
    )

    def suite(entries):
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump({"suite": "s", "plugins": ["./own.py"],
                                        "benchmarks": entries}))  # fmt: skip
        return load_suite(path, probe=False)  # its plugin file registered beside the rest

    toy = {"task": "classify.toy", "params": {"architecture": "node", "architecture.depth": 4}}
    cells = suite([{**toy, "matrix": {"architecture.solver": ["rk4", "dopri5", "mylab.exact"]}},
                   {**toy, "params": {**toy["params"], "architecture.solver": "mylab.heun_dt",
                                      "architecture.solver.dt": 0.25}}]).cells  # fmt: skip
    steps = [c.component_params["architecture"].get("solver.step_size") for c in cells]
    assert steps == [0.05, None, None, None]  # rk4's own, as recorded before
    nodeo = {
        "task": "registration.pairwise",
        "params": {"method": "nodeo", "method.step_size": 0.25},
        "matrix": {"method.solver": ["rk4", "mylab.heun_dt"]},
    }
    with pytest.raises(SuiteError, match=r"nodeo passes solver.step_size \(0.25\), which "
                       r"mylab.heun_dt does not have \(parameters: dt\): it would run at its "
                       "own setting, not nodeo's"):  # fmt: skip
        suite([nodeo])


def test_the_step_a_holder_gave_its_solver_is_recorded_as_what_it_ran_at():
    """node steps its solver time/depth; the solver's step_size column keeps the solver's
    own default (changing it broke pairing), which a user audit read as the step taken
    (0.05 where it ran at 0.25). The cell records metric ran.<path>, the value passed
    down; nothing where the suite set the solver's own step or the solver takes none."""
    from bench import testing

    registry = testing.default_registry()

    def ran(params):
        cell = testing.run_cell("classify.toy", {"architecture": "node"},
                                {"architecture.depth": 4, "epochs": 1, **params},
                                registry=registry)  # fmt: skip
        return {k: v for k, v in cell.metrics.items() if k.startswith("ran.")}

    assert ran({"architecture.solver": "rk4"}) == {"ran.architecture.solver.step_size": 0.25}
    assert ran({"architecture.solver": "rk4", "architecture.time": 2.0}) == {
        "ran.architecture.solver.step_size": 0.5
    }
    assert ran({"architecture.solver": "rk4", "architecture.solver.step_size": 0.125}) == {}
    assert ran({"architecture.solver": "dopri5"}) == {}
