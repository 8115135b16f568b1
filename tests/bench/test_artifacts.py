"""Result files: encoding, names, limits, and their life through runs, failures and resume;
state put back between cells; fresh workers; methods and their families."""

from __future__ import annotations

import gzip
import io

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from bench.artifacts import ArtifactError, FileStore, check_name, encode
from bench.cli import main
from bench.executors import InProcessExecutor, ProcessExecutor
from bench.results import load_run
from bench.runner import run_suite
from bench.suite import SuiteError, load_suite

# --- encoding ---------------------------------------------------------------


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_a_2d_array_becomes_an_8bit_png_scaled_to_vmin_vmax():
    ramp = np.array([[0.0, 0.5], [1.0, 2.0]])
    [(name, kind, data)] = encode("ramp", ramp, vmin=0.0, vmax=1.0)
    assert (name, kind) == ("ramp.png", "png")
    # 0.5 * 255 = 127.5 rounds to 128 (numpy rounds half to even: 128); 2.0 clips to 255.
    assert _png(data).tolist() == [[0, 128], [255, 255]]


def test_default_scaling_is_the_arrays_finite_range_and_nan_is_black():
    image = np.array([[-1.0, np.nan], [1.0, 0.0]])
    [(_, _, data)] = encode("x.png", image)
    assert _png(data).tolist() == [[0, 0], [255, 128]]


def test_colour_and_colormap():
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[..., 1] = 200
    [(_, kind, data)] = encode("rgb", rgb)
    assert kind == "png" and _png(data).shape == (4, 5, 3) and _png(data)[0, 0, 1] == 200
    [(_, _, data)] = encode("map", np.eye(3), cmap="viridis")
    assert _png(data).shape == (3, 3, 3)


def test_an_array_with_an_affine_becomes_nifti_with_that_affine():
    volume = np.random.default_rng(0).normal(size=(3, 4, 5, 3))
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-90, -126, -72]
    [(name, kind, data)] = encode("disp", volume, affine=affine)
    assert (name, kind) == ("disp.nii.gz", "nifti")
    image = nib.Nifti1Image.from_bytes(gzip.decompress(data))
    np.testing.assert_allclose(image.affine, affine)
    # stored as float32: exact to float32 rounding
    np.testing.assert_allclose(image.get_fdata(), volume, rtol=1e-6, atol=1e-6)


def test_a_3d_array_without_affine_is_a_volume_with_identity():
    [(name, kind, data)] = encode("vol", np.ones((2, 3, 5)))
    assert kind == "nifti" and name == "vol.nii.gz"
    image = nib.Nifti1Image.from_bytes(gzip.decompress(data))
    np.testing.assert_allclose(image.affine, np.eye(4))


def test_a_figure_becomes_png_and_svg():
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 2))
    figure.add_subplot().plot([0, 1])
    files = encode("curve", figure, svg=True)
    assert [(n, k) for n, k, _ in files] == [("curve.png", "png"), ("curve.svg", "svg")]
    assert files[0][2].startswith(b"\x89PNG") and b"<svg" in files[1][2]


def test_bytes_keep_their_name_and_need_a_suffix():
    assert encode("table.csv", b"a,b\n") == [("table.csv", "bytes", b"a,b\n")]
    assert encode("note.txt", "hi") == [("note.txt", "text", b"hi")]
    with pytest.raises(ArtifactError, match="needs a suffix"):
        encode("table", b"a,b\n")


@pytest.mark.parametrize(
    "name",
    ["../x.png", "a/b.png", "a\\b", "..", ".hidden", "", "x" * 200, "a b", None, "a..b", "x.png\n"],
)
def test_names_are_one_plain_file_name(name):
    with pytest.raises(ArtifactError, match="not allowed"):
        check_name(name)


def test_wrong_values_say_what_is_accepted():
    with pytest.raises(ArtifactError, match="cannot save a dict"):
        encode("x", {"a": 1})
    with pytest.raises(ArtifactError, match="a NIfTI volume needs 2 to 5"):
        encode("x", np.ones(3), affine=np.eye(4))
    with pytest.raises(ArtifactError, match="4x4"):
        encode("x", np.ones((2, 2, 2)), affine=np.eye(3))
    with pytest.raises(ArtifactError, match="cannot end in .png"):
        encode("x.png", np.ones((2, 2, 2)), affine=np.eye(4))


def test_the_size_limit_is_a_clear_error_and_writes_nothing(tmp_path):
    store = FileStore(tmp_path / "cell", tmp_path, limit_bytes=1000)
    store.save("small.bin", bytes(600))
    with pytest.raises(ArtifactError, match="past its limit of 0 MiB.*files_limit_mb"):
        store.save("more.bin", bytes(600))
    assert sorted(p.name for p in (tmp_path / "cell").iterdir()) == ["small.bin"]


@pytest.mark.parametrize("kept", [True, False], ids=["run folder", "no folder"])
def test_a_file_saved_again_counts_once_against_the_limit(tmp_path, kept):
    store = FileStore(tmp_path / "cell" if kept else None, tmp_path, limit_bytes=1000)
    for _ in range(5):  # a figure re-saved at each evaluation: 600 bytes kept, not 3000
        store.save("progress.bin", bytes(600))
    store.save("progress.bin", bytes(900))
    assert store.used == 900
    with pytest.raises(ArtifactError, match="past its limit"):
        store.save("other.bin", bytes(200))


def test_torch_tensors_are_accepted():
    import torch

    [(name, kind, _)] = encode("t", torch.ones(3, 4, requires_grad=True))
    assert (name, kind) == ("t.png", "png")


# --- through runs -------------------------------------------------------------

FILES_SUITE = """
suite: files
device: cpu
repeats: 1
timeout: 20
files_limit_mb: 2
plugins: [FIXTURE_PLUGINS]
benchmarks:
  - task: test.files
    matrix: {mode: [ok, raise, crash, big, badname]}
"""

EXPECTED = {"ramp.png", "volume.nii.gz", "figure.png", "figure.svg", "notes.txt"}


@pytest.fixture(scope="module")
def files_run(tmp_path_factory):
    from bench import Registry, get_plugin_manager

    from .conftest import FIXTURE_PLUGINS

    tmp = tmp_path_factory.mktemp("files")
    path = tmp / "suite.yaml"
    path.write_text(FILES_SUITE.replace("FIXTURE_PLUGINS", FIXTURE_PLUGINS))
    registry = Registry(get_plugin_manager([FIXTURE_PLUGINS], builtins=False))
    suite = load_suite(path, registry)
    run_suite(
        suite, tmp / "run", executor=ProcessExecutor(suite.plugins, suite.base_dir, builtins=False)
    )
    return load_run(tmp / "run")


def _files_of(run, mode):
    cell = run.cells[run.cells["param.mode"] == mode].iloc[0]
    files = run.files[run.files["cell_id"] == cell["cell_id"]]
    return cell, files


@pytest.mark.parametrize("mode, status", [("ok", "ok"), ("raise", "error"), ("crash", "error")])
def test_files_are_listed_and_survive_a_cell_that_fails_after_saving(files_run, mode, status):
    cell, files = _files_of(files_run, mode)
    assert cell["status"] == status
    assert set(files["name"]) == EXPECTED
    for row in files.itertuples():
        path = files_run.path / row.path
        assert path.is_file() and path.stat().st_size == row.bytes
        assert row.path == f"files/{cell['cell_id']}/{row.name}"
    kinds = dict(zip(files["name"], files["kind"]))
    assert kinds["volume.nii.gz"] == "nifti" and kinds["notes.txt"] == "text"


def test_a_cell_past_its_files_limit_fails_clearly_and_keeps_the_rest(files_run):
    cell, files = _files_of(files_run, "big")
    assert cell["status"] == "error"
    assert "past its limit of 2 MiB" in cell["error"]
    assert set(files["name"]) == EXPECTED  # written before the limit was hit


def test_a_bad_name_fails_the_cell_and_escapes_nothing(files_run):
    cell, _ = _files_of(files_run, "badname")
    assert cell["status"] == "error" and "'../escape.png' is not allowed" in cell["error"]
    assert not list(files_run.path.rglob("escape*"))


def test_show_lists_the_files(files_run, capsys):
    assert main(["show", str(files_run.path), "--files"]) == 0
    out = capsys.readouterr().out
    assert "volume.nii.gz" in out and "nifti" in out and "files/" in out


def test_resume_keeps_the_files_of_finished_cells_and_drops_stale_ones(write_suite, tmp_path):
    marker = tmp_path / "marker"
    path = write_suite(
        "suite: resume_files\ndevice: cpu\nrepeats: 1\nplugins: [FIXTURE_PLUGINS]\n"
        f"benchmarks:\n  - task: test.files\n    params: {{marker: '{marker}'}}\n"
    )
    out = tmp_path / "out"
    assert main(["run", str(path), "--output", str(out), "--quiet"]) == 0
    run = load_run(out / "resume_files")
    cell_id = run.cells["cell_id"].iloc[0]
    # A stale folder of a cell that never finished (a killed run) is cleared on resume.
    stale = run.path / "files" / "0123456789ab"
    stale.mkdir()
    (stale / "old.png").write_bytes(b"x")
    assert main(["run", str(path), "--resume", str(run.path), "--quiet"]) == 0
    again = load_run(run.path)
    assert set(again.files[again.files["cell_id"] == cell_id]["name"]) == EXPECTED
    assert marker.read_text().count("\n") == 1  # the finished cell did not run again
    assert stale.exists()  # not a cell of this suite: left alone


@pytest.mark.parametrize("link", ["cell", "files"])
def test_resume_never_follows_a_link_out_of_the_run_folder(write_suite, registry, tmp_path, link):
    """A ``files/<cell_id>`` (or ``files``) link: ``--resume`` emptied the folder it
    pointed to and wrote the cell's files there."""
    suite = load_suite(
        write_suite("suite: links\ndevice: cpu\nrepeats: 1\nplugins: [FIXTURE_PLUGINS]\n"
                    "benchmarks:\n  - task: test.files\n"),
        registry,
    )  # fmt: skip
    (cell,) = suite.cells
    outside = tmp_path / "outside"
    (outside / cell.id).mkdir(parents=True)
    (outside / "precious.txt").write_text("keep me")
    (outside / cell.id / "precious.txt").write_text("keep me")
    run_dir = tmp_path / "run"
    (run_dir / "files").mkdir(parents=True)
    if link == "cell":
        (run_dir / "files" / cell.id).symlink_to(outside)
    else:
        (run_dir / "files").rmdir()
        (run_dir / "files").symlink_to(outside)
    run_suite(suite, run_dir, executor=InProcessExecutor(registry), resume=True)
    assert sorted(p.name for p in outside.rglob("*")) == [cell.id, "precious.txt", "precious.txt"]
    files = run_dir / "files" / cell.id
    assert not (run_dir / "files").is_symlink() and not files.is_symlink() and files.is_dir()
    assert set(load_run(run_dir).files["name"]) == EXPECTED


# --- state between cells ------------------------------------------------------

LEAK_SUITE = """
suite: leak
device: cpu
repeats: 1
plugins: [FIXTURE_PLUGINS]
benchmarks:
  - task: test.leaky
    params: {mode: leak}
  - task: test.leaky
    params: {mode: clean}
"""


@pytest.mark.parametrize("executor", ["process", "in_process"])
def test_state_one_cell_changes_is_put_back_before_the_next(
    write_suite, registry, tmp_path, executor
):
    import os

    import torch

    suite = load_suite(write_suite(LEAK_SUITE), registry)
    if executor == "process":
        runner = ProcessExecutor(suite.plugins, suite.base_dir, builtins=False)
    else:
        runner = InProcessExecutor(registry)
    cwd = os.getcwd()
    run_suite(suite, tmp_path / "run", executor=runner)
    cells = load_run(tmp_path / "run").cells.set_index("param.mode")
    leak, clean = cells.loc["leak"], cells.loc["clean"]
    assert leak["metric.pid"] == clean["metric.pid"]  # the same (reused) worker
    # Both cells draw with seed 0 and the default dtype float32, so the draw repeats
    # exactly; a leaked float64 default would change it (0.4963 -> 0.9701 in issue 13).
    assert clean["metric.draw"] == leak["metric.draw"]
    for flag in ("float64", "env", "cwd_root"):
        assert clean[f"metric.{flag}"] == 0.0, flag
    assert clean["metric.grad"] == 1.0
    assert os.getcwd() == cwd and torch.get_default_dtype() == torch.float32
    assert not torch.are_deterministic_algorithms_enabled()


def test_fresh_worker_runs_each_cell_in_a_new_process(write_suite, registry, tmp_path):
    path = write_suite(
        "suite: fresh\ndevice: cpu\nrepeats: 1\nplugins: [FIXTURE_PLUGINS]\nbenchmarks:\n"
        "  - task: test.leaky\n    seeds: [0, 1]\n"
        "  - task: test.leaky\n    params: {mode: clean}\n    seeds: [0, 1]\n"
        "    fresh_worker: true\n"
    )
    suite = load_suite(path, registry)
    run_suite(
        suite,
        tmp_path / "run",
        executor=ProcessExecutor(suite.plugins, suite.base_dir, builtins=False),
    )
    cells = load_run(tmp_path / "run").cells
    reused = cells[cells["bench"] == 0]["metric.pid"]
    fresh = cells[cells["bench"] == 1]["metric.pid"]
    assert reused.nunique() == 1
    assert fresh.nunique() == 2 and not set(fresh) & set(reused)


def test_suite_settings_for_files_and_workers_are_checked(write_suite, registry):
    path = write_suite(
        "suite: bad\nfiles_limit_mb: 0\nfresh_worker: maybe\nplugins: [FIXTURE_PLUGINS]\n"
        "benchmarks:\n  - task: test.leaky\n"
    )
    with pytest.raises(SuiteError) as err:
        load_suite(path, registry)
    assert err.value.errors == [
        "files_limit_mb: expected a number of MiB > 0, got 0",
        "fresh_worker: expected true or false, got 'maybe'",
    ]


# --- methods and families -------------------------------------------------------


def test_a_method_of_the_slots_family_runs(write_suite, registry, tmp_path):
    path = write_suite(
        "suite: method\ndevice: cpu\nplugins: [FIXTURE_PLUGINS]\nbenchmarks:\n"
        "  - task: test.uses_method\n    matrix: {method: [test.double]}\n"
    )
    assert main(["run", str(path), "--output", str(tmp_path), "--quiet", "--in-process"]) == 0
    cells = load_run(tmp_path / "method").cells
    assert cells["metric.answer"].tolist() == [42.0]


def test_a_method_of_another_family_is_refused_at_validation(write_suite, registry):
    path = write_suite(
        "suite: method\nplugins: [FIXTURE_PLUGINS]\nbenchmarks:\n"
        "  - task: test.uses_method\n    matrix: {method: [test.double, test.triple]}\n"
    )
    with pytest.raises(SuiteError) as err:
        load_suite(path, registry)
    assert err.value.errors == [
        "benchmarks[0].matrix.method: 'test.triple' is a method that does not subclass "
        "ToyFamily, which slot 'method' takes (ToyFamily methods: test.double, test.prepared)"
    ]


def test_bench_list_shows_methods_with_their_family(capsys):
    from .conftest import FIXTURE_PLUGINS

    assert main(["list", "method", "--plugins", FIXTURE_PLUGINS]) == 0
    out = capsys.readouterr().out
    assert "test.double" in out and "is a: ToyFamily" in out
