"""No module grows past ~400 lines without saying why (docs/architecture.md, *Module size*).

A long module is where concerns start to mix; the rule makes a split the default and a long module
a decision someone wrote down: the header (docstring or leading comment) of a module over the limit
carries one sentence beginning ``Why one module:``. Generated code is exempt.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 400
REASON = "Why one module:"
CHECKED = (
    ("progress_bridge", "*.py"),
    ("tasks", "*.py"),
    ("web", "*.py"),
    ("frontend/src", "*.ts"),
    ("frontend/src", "*.tsx"),
)
EXEMPT = ("frontend/src/generated/",)


def _modules(root: Path) -> Iterator[Path]:
    for folder, pattern in CHECKED:
        for path in sorted((root / folder).rglob(pattern)):
            if not path.relative_to(root).as_posix().startswith(EXEMPT):
                yield path


def header(path: Path, text: str) -> str:
    """A module's header: a Python module's docstring, a TypeScript module's leading comments."""
    if path.suffix == ".py":
        return ast.get_docstring(ast.parse(text)) or ""
    lines = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith(("//", "/*", "*")):
            break
        lines.append(line)
    return "\n".join(lines)


def oversized(root: Path) -> list[str]:
    """The modules over the limit whose header states no reason, as ``path (lines)``."""
    found = []
    for path in _modules(root):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > LIMIT and REASON not in header(path, text):
            found.append(f"{path.relative_to(root).as_posix()} ({lines} lines)")
    return found


def test_no_module_is_over_the_limit_without_a_stated_reason() -> None:
    found = oversized(ROOT)
    assert not found, (
        f"split these, or state in the header why each is one module ({REASON!r}): "
        + ", ".join(found)
    )


def test_the_check_finds_a_long_module_and_accepts_a_stated_reason(tmp_path: Path) -> None:
    body = "x = 1\n" * (LIMIT + 1)
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "short.py").write_text("x = 1\n" * LIMIT)
    (tmp_path / "web" / "long.py").write_text(body)
    (tmp_path / "web" / "reasoned.py").write_text(f'"""{REASON} one hot class."""\n' + body)
    (tmp_path / "web" / "buried.py").write_text(body + f"# {REASON} too late to count\n")
    (tmp_path / "frontend" / "src" / "generated").mkdir(parents=True)
    (tmp_path / "frontend" / "src" / "generated" / "events.ts").write_text(body)
    (tmp_path / "frontend" / "src" / "client.ts").write_text(body)
    (tmp_path / "frontend" / "src" / "store.ts").write_text(f"// State.\n// {REASON} x.\n" + body)
    (tmp_path / "frontend" / "src" / "late.ts").write_text(f"// State.\n{body}// {REASON} x.\n")
    assert oversized(tmp_path) == [
        f"web/buried.py ({LIMIT + 2} lines)",
        f"web/long.py ({LIMIT + 1} lines)",
        f"frontend/src/client.ts ({LIMIT + 1} lines)",
        f"frontend/src/late.ts ({LIMIT + 3} lines)",
    ]
