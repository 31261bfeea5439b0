"""What pip installs, used as a new user would: the wheel installed without extras into a new
environment, run from a folder outside the repository, with configs found by name; and
everything under the one import name ``duet``, beside packages that own generic names."""

import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.conftest import write_mnist
from tests.plain_install import OPTIONAL, plain_environment, run

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("lightning_modules", "datamodules", "callbacks", "scripts", "configs")
README = (REPO / "README.md").read_text()


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


@pytest.fixture(scope="module")
def duet_wheel(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    return build_wheel(copy_of_duet(root), "duet", root / "wheels")


@pytest.fixture(scope="module")
def plain_duet(duet_wheel, tmp_path_factory) -> tuple[Path, Path]:
    """(the bin/ folder of an environment with duet and only its required dependencies, an
    empty folder outside the repository holding MNIST files in data/ to run it in)."""
    root = tmp_path_factory.mktemp("plain")
    bin_folder = plain_environment(duet_wheel, root)
    elsewhere = root / "elsewhere"
    write_mnist(elsewhere / "data", num_train=256, num_test=64)
    return bin_folder, elsewhere


def in_plain(plain_duet, *command: str) -> subprocess.CompletedProcess:
    bin_folder, elsewhere = plain_duet
    program = str(bin_folder / command[0])
    return subprocess.run(
        [program, *command[1:]], cwd=elsewhere, capture_output=True, text=True, timeout=300
    )


def test_every_module_imports_in_the_plain_environment_which_lacks_every_extra(plain_duet):
    check = (
        "import importlib, importlib.util, os, pkgutil, lightning, duet\n"
        # Set by Lightning's import; importing duet used to drop it.
        "NVML = 'PYTORCH_NVML_BASED_CUDA_CHECK'\n"
        "nvml_check = os.environ.get(NVML)\n"
        f"print([n for n in {OPTIONAL} if importlib.util.find_spec(n)])\n"
        "names = [m.name for m in pkgutil.walk_packages(duet.__path__, 'duet.')]\n"
        "for name in names:\n    importlib.import_module(name)\n"
        "print(len(names))\n"
        "print(os.environ.get(NVML) == nvml_check)"
    )
    result = in_plain(plain_duet, "python", "-c", check)
    assert result.returncode == 0, result.stderr[-3000:]
    absent, count, environment_unchanged = result.stdout.strip().splitlines()[-3:]
    assert absent == "[]"
    assert int(count) > 50  # every module of the four packages and of the configs
    assert environment_unchanged == "True"  # no import-time change of the NVML check


def test_duet_configs_lists_every_config_file_of_the_repository(plain_duet):
    result = in_plain(plain_duet, "duet", "configs")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines()}
    root = REPO / "configs"
    files = {p.relative_to(root).with_suffix("").as_posix() for p in root.glob("**/*.yaml")}
    assert listed == files
    assert all(len(line.split(maxsplit=1)) == 2 for line in result.stdout.splitlines())


def test_the_quickstart_trains_by_config_name_and_samples_without_extras(plain_duet):
    _, elsewhere = plain_duet
    fit = in_plain(plain_duet, "duet", "fit", "--config", "gan", "--trainer.max_steps", "2")
    assert fit.returncode == 0, fit.stderr[-3000:]
    checkpoint = elsewhere / "runs" / "gan" / "version_0" / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    sample = in_plain(plain_duet, "duet", "sample", str(checkpoint), "--num", "4", "--out", "s.png")
    assert sample.returncode == 0, sample.stderr
    assert (elsewhere / "s.png").stat().st_size > 0


def test_a_missing_extra_or_config_name_is_one_line(plain_duet):
    play = in_plain(plain_duet, "duet", "play", "--help")
    assert play.returncode == 0 and "--video-dir" in play.stdout, play.stderr
    logger = "lightning.pytorch.loggers.TensorBoardLogger"
    board = in_plain(plain_duet, "duet", "fit", "--config", "gan", "--trainer.logger", logger)
    assert board.returncode == 1
    assert board.stderr.splitlines()[0] == (
        f"error: trainer.logger {logger} needs tensorboard, which is not installed: "
        'pip install "duet[tensorboard]" (or pip install tensorboard).'
    )
    wrong = in_plain(plain_duet, "duet", "fit", "--config", "dcgna")
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("error: config 'dcgna': no such file here")
    assert "did you mean dcgan" in wrong.stderr


def test_the_readme_python_example_runs_without_extras(plain_duet):
    (example,) = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    short = example.replace("max_steps=200", "max_steps=2") + "\nprint(tuple(images.shape))\n"
    result = in_plain(plain_duet, "python", "-c", short)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "(16, 1, 28, 28)"


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


def test_duet_installs_beside_a_package_owning_scripts_and_callbacks(duet_wheel, tmp_path):
    other_wheel = build_wheel(write_other_project(tmp_path), "other", tmp_path / "wheels")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
    run(*install, str(duet_wheel), str(other_wheel))
    # No dependencies needed: nothing below imports more than the standard library.
    site = Path(run(str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"))
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
