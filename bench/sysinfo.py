"""What a run ran on: code version, packages, devices, host. Stored in run.json."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

PACKAGES = (
    "dynbench",
    "torch",
    "triton",
    "torchdiffeq",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "pluggy",
    "nilearn",
    "scikit-image",
)


#: environment variables that change how cells run or what they time, recorded where set
ENVIRONMENT = (
    "TRITON_INTERPRET",  # Triton kernels in the CPU interpreter: its times, not a GPU's
    "CUDA_LAUNCH_BLOCKING",
    "CUDA_VISIBLE_DEVICES",
    "TORCHDYNAMO_DISABLE",
    "TORCH_COMPILE_DISABLE",
    "PYTORCH_NO_CUDA_MEMORY_CACHING",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)


def environment() -> dict[str, str]:
    """The ``ENVIRONMENT`` variables set in the launching process: its local workers
    inherit them (but ``--gpus`` gives each its own ``CUDA_VISIBLE_DEVICES``); SLURM jobs
    run in the environment their nodes give them, not recorded here."""
    return {k: os.environ[k] for k in ENVIRONMENT if k in os.environ}


def environment_note(env: Any) -> str:
    """``TRITON_INTERPRET=1 (Triton kernels ran in its CPU interpreter: ...)``: a run's
    recorded environment as a line; "" for none (or a damaged record)."""
    if not isinstance(env, dict) or not env:
        return ""
    text = " ".join(f"{k}={v}" for k, v in sorted(env.items()))
    if str(env.get("TRITON_INTERPRET", "0")) not in ("", "0"):
        text += " (Triton kernels ran in its CPU interpreter: their times are the interpreter's)"
    return text


def run_environment(meta: Any) -> str:
    """What ``environment_note`` says of a run's environment, and of each earlier
    invocation's where a resume ran in another (``earlier_runs``); "" where none was
    set or recorded."""
    if not isinstance(meta, dict):
        return ""
    now = meta.get("environment")
    earlier = [
        environment_note(e.get("environment")) or "none set"
        for e in meta.get("earlier_runs") or []
        if isinstance(e, dict) and "environment" in e and e["environment"] != now
    ]
    text = environment_note(now)
    if not text and not earlier:
        return ""
    return (text or "none set") + "".join(f"; before a resume: {e}" for e in earlier)


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(path: Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the source tree dynbench runs from (None outside git)."""
    where = path or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(device: str) -> dict[str, Any]:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(device)
        return {
            "device": device,
            "name": props.name,
            "memory_bytes": props.total_memory,
            "capability": f"{props.major}.{props.minor}",
        }
    return {"device": device, "name": cpu_name(), "threads": torch.get_num_threads()}


def run_metadata(devices: list[str]) -> dict[str, Any]:
    import torch

    cuda: dict[str, Any] = {"version": torch.version.cuda, "available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        try:
            cuda["driver"] = torch.cuda.driver_version()  # type: ignore[attr-defined]
        except AttributeError:
            cuda["driver"] = None
    return {
        "git": git_state(),
        "packages": package_versions(),
        "devices": [device_info(d) for d in devices],
        "cuda": cuda,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "environment": environment(),  # {}: none set (a run without the key: not recorded)
        "load": host_load(),
    }


#: a 1-minute load average over this share of the CPUs at a run's start: a busy machine
BUSY_SHARE = 0.5


def host_load() -> dict[str, Any]:
    """The machine's 1-minute load average as a run starts (before any cell: other
    work's, or a run that just ended: read it as a hint) and the CPUs this process may
    use; {} where the system has none. Host-wide: a SLURM run's cells ran elsewhere,
    so nothing is said of it there."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):  # not on this system
        return {}
    try:  # the CPUs this process may run on (an affinity mask, a cgroup's cpuset)
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 0
    return {"load_1min": round(float(load), 2), "cpus": cpus}


def run_load(meta: Any) -> tuple[str, bool]:
    """The load a run started under, ``3.9 on 2 CPUs at the start``, each earlier
    invocation's too where it was resumed (``earlier_runs``), and whether any was busy
    (over ``BUSY_SHARE`` of its CPUs); ("", False) where not recorded (or damaged)."""
    if not isinstance(meta, dict):
        return "", False
    earlier = meta.get("earlier_runs") if isinstance(meta.get("earlier_runs"), list) else []
    readings = [_reading(e) for e in [*earlier, meta] if isinstance(e, dict)]
    readings = [r for r in readings if r]
    text = "; then, resumed, ".join(text for text, _ in readings)
    return text, any(busy for _, busy in readings)


def load_note(meta: Any) -> str:
    """``run_load``'s text, with ``(the machine was busy: times may include other
    work)`` where it was; "" where not recorded."""
    text, busy = run_load(meta)
    return text + " (the machine was busy: times may include other work)" if busy else text


def _reading(invocation: dict[str, Any]) -> tuple[str, bool] | None:
    """One invocation's load at its start and whether it was busy; None where not
    recorded, damaged, or a SLURM run (its cells ran on other hosts than the one read)."""
    load = invocation.get("load")
    if not isinstance(load, dict) or invocation.get("executor") == "SlurmExecutor":
        return None
    value, cpus = load.get("load_1min"), load.get("cpus")
    if not isinstance(value, (int, float)) or not isinstance(cpus, int) or cpus <= 0:
        return None
    return f"{value:g} on {cpus} CPUs at the start", value > BUSY_SHARE * cpus
