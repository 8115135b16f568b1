"""Templates for ``bench new KIND NAME``: a plugin file and a suite that runs it beside
built-ins of its kind. Each is a ``bench.Template``; ``$name`` is the plugin's
name, ``$cls`` its class name and ``$module`` the file's stem."""

from __future__ import annotations

from importlib.resources import files

from bench import Template, hookimpl


def _read(name: str) -> str:
    return (files(__package__) / name).read_text()


@hookimpl
def bench_templates() -> list[Template]:
    return [
        Template(
            "solver",
            "an explicit fixed-step Runge-Kutta solver, beside rk4 and heun on ode.harmonic",
            _read("solver.py.txt"),
            _read("solver.yaml.txt"),
        ),
        Template(
            "method",
            "a registration method (RegistrationMethod), beside svf and syn on MNI152 pairs",
            _read("method.py.txt"),
            _read("method.yaml.txt"),
        ),
        Template(
            "architecture",
            "a residual architecture (FlowArchitecture), beside resnet and revnet on the moons",
            _read("architecture.py.txt"),
            _read("architecture.yaml.txt"),
        ),
        Template(
            "physics",
            "a physics method (PhysicsMethod: a PINN by Adam), beside pinn on Raissi's Burgers",
            _read("physics.py.txt"),
            _read("physics.yaml.txt"),
        ),
        Template(
            "encoding",
            "a neural-field encoding (FieldEncoding: a Gabor-wavelet net), beside siren and "
            "fourier on the cameraman",
            _read("encoding.py.txt"),
            _read("encoding.yaml.txt"),
        ),
        Template(
            "task",
            "a task with a solver slot (exponential decay against its exact solution)",
            _read("task.py.txt"),
            _read("task.yaml.txt"),
        ),
    ]
