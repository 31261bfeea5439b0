"""What pip installs: everything under the one import name ``duet``, so duet and a package that
owns a generic top-level name (``scripts``, ``callbacks``) live side by side in one environment."""

import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("lightning_modules", "datamodules", "callbacks", "scripts")


def run(*command, **options) -> str:
    result = subprocess.run(command, capture_output=True, text=True, **options)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def build_wheel(project: Path, name: str, into: Path) -> Path:
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    run(*pip, "-w", str(into), str(project))
    (wheel,) = into.glob(f"{name}-*.whl")
    return wheel


def copy_of_duet(root: Path) -> Path:
    """The files a wheel is built from, copied: a build writes build/ and *.egg-info beside them."""
    copy = root / "duet-source"
    for name in ("pyproject.toml", "README.md", *PACKAGES):
        source = REPO / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(source, copy / name, ignore=ignore)
        else:
            copy.mkdir(exist_ok=True)
            shutil.copy(source, copy / name)
    return copy


def write_other_project(root: Path) -> Path:
    """A project that installs a top-level package ``scripts`` and a module ``callbacks``."""
    project = root / "other"
    (project / "scripts").mkdir(parents=True)
    (project / "scripts" / "__init__.py").write_text("OWNER = 'other'\n")
    (project / "callbacks.py").write_text("OWNER = 'other'\n")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "other"\nversion = "1.0"\n'
        '[tool.setuptools]\npackages = ["scripts"]\npy-modules = ["callbacks"]\n'
    )
    return project


def test_duet_installs_beside_a_package_owning_scripts_and_callbacks(tmp_path):
    wheels = tmp_path / "wheels"
    duet_wheel = build_wheel(copy_of_duet(tmp_path), "duet", wheels)
    other_wheel = build_wheel(write_other_project(tmp_path), "other", wheels)
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
    run(*install, str(duet_wheel), str(other_wheel))
    # duet's dependencies from this environment, as a plain path entry: the .pth files there
    # (this checkout's editable duet) are not read, so the wheel's duet is the one imported.
    site = Path(run(str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"))
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")

    installed = sorted(
        path.name
        for path in site.iterdir()
        if not path.name.endswith((".pth", "-info")) and path.name != "__pycache__"
    )
    assert installed == ["callbacks.py", "duet", "scripts"]  # duet adds one name, its own
    assert sorted(path.name for path in (site / "duet").iterdir()) == sorted(PACKAGES)
    check = (
        "import importlib.util, callbacks, scripts, duet.scripts.command as command;"
        "assert scripts.OWNER == callbacks.OWNER == 'other';"
        f"names = {PACKAGES};"
        "spec = [importlib.util.find_spec('duet.' + name).origin for name in names];"
        "print(command.__file__); print(*spec, sep='\\n')"
    )
    origins = run(str(python), "-c", check, cwd=tmp_path).splitlines()
    assert all(origin.startswith(str(site / "duet")) for origin in origins), origins
    assert run(str(venv / "bin" / "duet"), "--version") == f"duet {version('duet')}"
