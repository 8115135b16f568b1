"""scripts/gpu-session.sh without a GPU: its syntax, and what the ``first`` stage runs.

``timeout``, ``python3`` and ``nvidia-smi`` are replaced by stubs on PATH that record
their arguments, so the script's control flow runs here and nothing is measured."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu-session.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def test_syntax():
    done = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _run(tmp_path: Path, *stages: str, env: dict | None = None) -> list[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.txt"
    for tool in ("timeout", "python3", "nvidia-smi"):
        stub = bin_dir / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{calls}"\n')
        stub.chmod(0o755)
    out = tmp_path / "out"
    full_env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OUT": str(out)}
    full_env.update(env or {})
    done = subprocess.run(
        ["bash", str(SCRIPT), *stages], cwd=ROOT, env=full_env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return [line for line in calls.read_text().splitlines() if line.startswith("timeout")]


def test_first_stage_runs_the_headline_suite_then_the_sweep_within_nine_minutes(tmp_path):
    calls = _run(tmp_path, "first")
    assert len(calls) == 2
    headline, sweep = calls
    assert "-m bench run suites/kernels-headline.yaml" in headline
    assert f"scripts/sine_mlp_sweep.py {tmp_path / 'out' / 'sweep.jsonl'}" in sweep
    limits = [int(call.split()[3]) for call in calls]  # timeout --signal=TERM --kill-after=20 N
    assert limits == [200, 320] and sum(limits) <= 9 * 60


def test_stage_limits_can_be_overridden(tmp_path):
    calls = _run(tmp_path, "first", env={"STAGE_LIMIT_sweep": "100"})
    assert [int(call.split()[3]) for call in calls] == [200, 100]
