"""`pip install ./clients/python` builds the client without writing into its source tree (setuptools left build/
and tollgate_client.egg-info/ behind, untracked files in the repository), and the wheel holds the whole package:
its subpackage and the `py.typed` marker."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "python"


def _tree(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def test_building_the_client_writes_nothing_into_its_source(tmp_path):
    source = tmp_path / "python"
    shutil.copytree(
        CLIENT, source, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__", ".*_cache")
    )
    before = _tree(source)

    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert built.returncode == 0, built.stderr
    assert _tree(source) == before
    (wheel,) = (tmp_path / "dist").glob("tollgate_client-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "tollgate_client/py.typed",
        "tollgate_client/client.py",
        "tollgate_client/resources/customers.py",
    } <= names
    assert not {name for name in names if name.startswith("generate_types")}
