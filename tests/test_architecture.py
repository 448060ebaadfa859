"""The package's shape (docs/architecture.md): layer contracts, a folder a layer, short modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import ROOT

from qa_service.retrieval.store import PassageStore

PACKAGE = ROOT / "qa_service"
LAYERS = ("core", "retrieval", "engines", "index", "web", "cli")
# config.py and client.py beside __init__.py; everything else lives in a layer's folder.
MAX_TOP_LEVEL_MODULES = 4
MAX_MODULE_LINES = 400
# The store protocol's members (docs/architecture.md#the-store-protocol).
MAX_STORE_MEMBERS = 10


def test_the_import_contracts_hold():
    # The contracts are pyproject.toml's [tool.importlinter]; lint-imports is the venv's.
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_one_folder_per_layer_and_no_long_modules():
    top_level = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top_level) <= MAX_TOP_LEVEL_MODULES, top_level
    missing = [name for name in LAYERS if not (PACKAGE / name / "__init__.py").is_file()]
    assert not missing, f"layer packages missing: {missing}"
    lines = {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(PACKAGE.rglob("*.py"))
    }
    long_modules = {path: count for path, count in lines.items() if count > MAX_MODULE_LINES}
    assert not long_modules, f"modules over {MAX_MODULE_LINES} lines: {long_modules}"


def test_the_engine_interface_stays_narrow():
    # An engine implements every member: each one more is work for every engine, and a
    # call per candidate is a round trip per candidate on a database.
    members = [
        name
        for name in {*vars(PassageStore), *PassageStore.__annotations__}
        if not name.startswith("_")
    ]
    assert len(members) <= MAX_STORE_MEMBERS, sorted(members)
