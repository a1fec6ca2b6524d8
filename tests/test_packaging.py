"""The package as a user gets it: a wheel and an sdist that build from a
checkout, pass ``twine check``, and install into a fresh virtualenv where
``import timak`` and the ``timak`` command work (issue 22: the README said
``pip install timak``, and nothing checked that a package would build)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # Without PYTHONPATH: the tests may run with the checkout on it, and the
    # installed copy must be the one imported.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TIMAK_URL")}
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result


def _tracked_copy(to: Path) -> Path:
    """The checkout's tracked files (as they are now) under ``to``: building
    in the checkout itself would leave build/ and *.egg-info/ there."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                                check=True, timeout=60).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs a git checkout to know which files are the source")
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to / name)
    return to


@pytest.mark.slow
def test_wheel_and_sdist_build_check_and_install(tmp_path: Path) -> None:
    pytest.importorskip("build", reason="pip install '.[test]' brings build")
    pytest.importorskip("twine", reason="pip install '.[test]' brings twine")
    source = _tracked_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    # Without flags, build makes the sdist, then the wheel from the sdist:
    # a file missing from the sdist breaks the wheel.
    _run(sys.executable, "-m", "build", "--outdir", dist, source)
    (wheel,) = dist.glob("timak-*.whl")
    (sdist,) = dist.glob("timak-*.tar.gz")
    _run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "timak/py.typed" in names
    assert not [n for n in names if n.startswith(("tests/", "integration/"))]

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    _run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel)
    where = _run(python, "-c", "import timak; print(timak.__file__)", cwd=tmp_path).stdout
    assert Path(where.strip()).is_relative_to(venv)
    assert "add" in _run(venv / "bin" / "timak", "--help", cwd=tmp_path).stdout
    added = _run(venv / "bin" / "timak", "--url", "memory://", "add", "k", "a", "1",
                 cwd=tmp_path).stdout
    assert added.startswith("added a at 1 to k")
