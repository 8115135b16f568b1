"""Building the plugin manager: built-ins, entry points and suite-named plugins."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from bench import hookspecs

hookimpl = pluggy.HookimplMarker("bench")

ENTRY_POINT_GROUP = "bench"

#: the distribution whose own entry points (group ``bench``) are the built-in plugins
DISTRIBUTION = "dynbench"


class PluginLoadError(Exception):
    """A plugin module or file that could not be loaded; names which and why."""


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.value, e.name))


def _distribution(entry: Any) -> str:
    dist = getattr(entry, "dist", None)
    return (dist.metadata["Name"] or "").lower() if dist is not None else ""


def get_plugin_manager(
    extra: Iterable[str] = (), *, base_dir: Path | None = None, builtins: bool = True
) -> pluggy.PluginManager:
    """A fresh manager: hookspecs, every entry point of group ``bench`` (the built-in
    plugins are this distribution's own; ``builtins=False`` leaves them out), then
    ``extra``.

    ``extra`` holds module names (``my_lab.bench_plugins``) or paths to ``.py``
    files (relative ones resolved against ``base_dir``, the suite's folder).
    """
    pm = pluggy.PluginManager("bench")
    pm.add_hookspecs(hookspecs)
    #: plugin modules that could not be imported, with the reason; the rest works
    pm.unavailable = {}  # type: ignore[attr-defined]
    for entry in _entry_points():
        builtin = _distribution(entry) == DISTRIBUTION
        if builtin and not builtins:
            continue
        try:
            module = entry.load()
        except Exception as exc:  # a module of ours whose dependency is broken or missing
            if builtin:  # (a torchdiffeq internal change, no triton) is listed as unavailable
                pm.unavailable[entry.value] = f"{type(exc).__name__}: {exc}"  # type: ignore[attr-defined]
                continue
            msg = (
                f"the entry point {entry.name} = {entry.value!r} in group "
                f"{ENTRY_POINT_GROUP!r} failed to load: {type(exc).__name__}: {exc}"
            )  # a broken third-party package must say who it is
            raise PluginLoadError(msg) from exc
        if pm.get_plugin(entry.value) is None and not pm.is_registered(module):
            pm.register(module, name=entry.value if builtin else entry.name)
    failed = []  # every suite plugin that cannot load, said at once
    for spec in dict.fromkeys(extra):
        try:
            module = load_plugin(spec, base_dir=base_dir)
        except PluginLoadError as exc:
            failed.append(str(exc))
            continue
        if pm.get_plugin(module.__name__) is None:
            pm.register(module, name=module.__name__)
    if len(failed) == 1:
        raise PluginLoadError(failed[0])
    if failed:
        raise PluginLoadError(f"{len(failed)} plugins cannot load: " + "; ".join(failed))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        known = ", ".join(sorted(h for h in dir(hookspecs) if h.startswith("bench_")))
        raise PluginLoadError(f"{exc} (dynbench's hooks: {known})") from None
    return pm


_PROBE = """
import sys
from pathlib import Path
from bench.plugins import PluginLoadError, load_plugin
for spec in sys.argv[2:]:
    print("importing", spec, flush=True)
    try:
        load_plugin(spec, base_dir=Path(sys.argv[1]))
    except PluginLoadError:
        pass  # an ordinary failure: the caller's own import says it better
print("probe-done", flush=True)
"""


def probe_plugins(specs: Iterable[str], *, base_dir: Path | None = None) -> None:
    """Import plugin modules or files in a child process before this one does: a plugin
    that ends the process while importing (``os._exit``, a crash) is reported as a
    ``PluginLoadError`` naming it, not obeyed. Costs one Python start-up and the
    plugins' imports; nothing is done when there are no plugins to load."""
    import subprocess

    specs = list(specs)
    if not specs:
        return
    where = str(base_dir or Path.cwd())
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, where, *specs],
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.TimeoutExpired:
        raise PluginLoadError(
            f"importing the plugins {', '.join(specs)} did not finish within 600 s"
        ) from None
    lines = done.stdout.splitlines()
    if "probe-done" in lines:
        return
    culprit = next((ln.split(" ", 1)[1] for ln in reversed(lines) if ln.startswith("importing ")),
                   ", ".join(specs))  # fmt: skip
    raise PluginLoadError(
        f"plugin {culprit!r} ended the process while importing "
        f"({exit_description(done.returncode)}); dynbench did not load it"
    )


def exit_description(code: int | None) -> str:
    """A child process's end as words: ``exit code 3`` or ``killed by signal 9``."""
    if code is not None and code < 0:
        return f"killed by signal {-code}"
    return f"exit code {code}"


def load_plugin(spec: str, *, base_dir: Path | None = None) -> ModuleType:
    """Import a plugin given as a module name or a path to a ``.py`` file."""
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        path = Path(spec)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        path = path.resolve()
        if not path.is_file():
            raise PluginLoadError(f"plugin file {spec!r} does not exist (looked at {path})")
        # A stable module name per file, so workers and the parent agree on it.
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
        mod_name = f"bench_local_{path.stem}_{digest}"
        if mod_name in sys.modules:
            return sys.modules[mod_name]
        file_spec = importlib.util.spec_from_file_location(mod_name, path)
        if file_spec is None or file_spec.loader is None:
            raise PluginLoadError(f"plugin file {spec!r} cannot be imported")
        module = importlib.util.module_from_spec(file_spec)
        # its own folder on the path (after what is there, so that it shadows no installed
        # module): a sibling module it imports (from my_method import Mine) imports under
        # `bench` as under `python -m bench`
        _on_import_path(path.parent, base_dir)
        sys.modules[mod_name] = module
        try:
            file_spec.loader.exec_module(module)
        except SystemExit as exc:  # a plugin must not end the program that loads it
            del sys.modules[mod_name]
            raise PluginLoadError(
                f"plugin file {spec!r} called sys.exit({exc.code!r}) while importing"
            ) from None
        except Exception as exc:
            del sys.modules[mod_name]
            raise PluginLoadError(
                f"plugin file {spec!r} failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        return module
    _on_import_path(base_dir)
    return _import_module(spec)


def plugin_sources(specs: Iterable[str], base_dir: Path | None = None) -> list[dict[str, str]]:
    """What a suite's plugins were read from, for ``run.json``: per spec the file (a
    top-level module's own file; a package's folder) and the SHA-256 of its Python
    source (a package's ``.py`` files, in path order), so that a plugin edited between
    a run and its resume is seen. A module inside a package (``my_lab.bench_plugins``)
    is hashed over its top-level package, whose other modules it may import. A spec
    that cannot be found gets ``error`` instead."""
    found = []
    for spec in specs:
        entry: dict[str, str] = {"spec": spec}
        try:
            if spec.endswith(".py") or "/" in spec or "\\" in spec:
                path = Path(spec)
                path = (base_dir / path if not path.is_absolute() and base_dir else path).resolve()
                files, where = [path], path
            else:
                module_spec = importlib.util.find_spec(spec)
                origin = module_spec.origin if module_spec else None
                if not origin or not Path(origin).is_file():
                    raise OSError(f"no source file for module {spec!r}")
                where = _package_root(spec) or Path(origin)
                files = [where]
                if where.name == "__init__.py":  # a package: every module of it
                    where = where.parent
                    files = sorted(where.rglob("*.py"))
            digest = hashlib.sha256()
            for file in files:
                digest.update(str(file.relative_to(where) if file != where else "").encode())
                digest.update(file.read_bytes())
            entry.update(path=str(where), sha256=digest.hexdigest())
        except (OSError, ImportError, ValueError) as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
        found.append(entry)
    return found


def _package_root(spec: str) -> Path | None:
    """The ``__init__.py`` of the top-level package a dotted module spec lives in
    (None for a top-level module, or a namespace package with no one folder)."""
    if "." not in spec:
        return None
    top = importlib.util.find_spec(spec.split(".", 1)[0])
    origin = top.origin if top else None
    if origin and Path(origin).name == "__init__.py" and Path(origin).is_file():
        return Path(origin)
    return None


def _on_import_path(*folders: Path | None) -> None:
    """Put ``folders`` (the suite's; a plugin file's own) and the working directory on
    ``sys.path`` (after what is there): a suite's ``plugins: [my_lab.bench_plugins]``
    then imports the same under the ``bench`` script as under ``python -m bench``, which
    has the working directory on the path already."""
    for folder in (*folders, Path.cwd()):
        if folder is None:
            continue
        entry = str(Path(folder).resolve())
        if entry not in sys.path and not (entry == str(Path.cwd()) and "" in sys.path):
            sys.path.append(entry)


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise PluginLoadError(
            f"plugin module {name!r} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    except Exception as exc:
        raise PluginLoadError(
            f"plugin module {name!r} raised while importing: {type(exc).__name__}: {exc}"
        ) from exc
    except SystemExit as exc:
        raise PluginLoadError(
            f"plugin module {name!r} called sys.exit({exc.code!r}) while importing"
        ) from None
