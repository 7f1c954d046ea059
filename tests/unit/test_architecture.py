"""The architecture's rules hold, and the machine that checks them catches a violation.

The rules (``docs/architecture.md``) are import-linter contracts in ``pyproject.toml``, run by
``scripts/test``. Here: the protocol core imports without any I/O library at run time, and
``lint-imports`` fails on copies of the code with a rule broken on purpose — so a contract that
silently stopped checking anything would fail this test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
#: What the protocol core must never load (asyncio aside: pydantic-settings imports it).
IO_LIBRARIES = ("redis", "fastapi", "starlette", "uvicorn", "websockets", "celery")


def test_the_protocol_core_loads_no_io_library() -> None:
    code = (
        "import sys, progress_bridge.bridge.core, progress_bridge.events; "
        f"print(sorted(m for m in {IO_LIBRARIES!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "[]"


def _lint_copy(
    tmp_path: Path, violation: tuple[str, str] | None
) -> subprocess.CompletedProcess[str]:
    """Run the contracts on a copy of the code, with one line added to one file."""
    for package in ("progress_bridge", "tasks", "web"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    if violation is not None:
        path, line = violation
        target = tmp_path / path
        target.write_text(target.read_text() + f"\n{line}\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )


def test_the_contracts_hold_on_the_code_as_it_is(tmp_path: Path) -> None:
    done = _lint_copy(tmp_path, None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("violation", "contract"),
    [
        pytest.param(
            ("progress_bridge/bridge/core/codes.py", "import redis  # noqa"),
            "The protocol core and the event model do no I/O",
            id="core-imports-redis",
        ),
        pytest.param(
            ("progress_bridge/cli/tail.py", "import tasks  # noqa"),
            "The library knows no application",
            id="library-imports-the-app",
        ),
        pytest.param(
            ("progress_bridge/bridge/hub.py", "import redis.asyncio  # noqa"),
            "Only the store speaks Redis",
            id="bridge-speaks-redis",
        ),
        pytest.param(
            ("progress_bridge/store/keys.py", "import progress_bridge.capture.producer  # noqa"),
            "Data flows one way",
            id="store-imports-capture",
        ),
    ],
)
def test_lint_imports_fails_on_a_violation(
    tmp_path: Path, violation: tuple[str, str], contract: str
) -> None:
    done = _lint_copy(tmp_path, violation)
    assert done.returncode != 0
    broken = done.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, done.stdout
