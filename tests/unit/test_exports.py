"""Every public module declares ``__all__``, and every exported name exists."""

from __future__ import annotations

import importlib
import pkgutil

import progress_bridge


def test_every_public_module_declares_all_and_its_names_exist() -> None:
    for info in pkgutil.iter_modules(progress_bridge.__path__):
        if info.name.startswith("_") or info.name in ("cli", "__main__"):
            continue
        module = importlib.import_module(f"progress_bridge.{info.name}")
        assert hasattr(module, "__all__"), f"progress_bridge.{info.name} has no __all__"
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert not missing, f"progress_bridge.{info.name}.__all__ names missing objects: {missing}"


def test_package_exports_resolve() -> None:
    missing = [name for name in progress_bridge.__all__ if not hasattr(progress_bridge, name)]
    assert not missing
    assert len(set(progress_bridge.__all__)) == len(progress_bridge.__all__)
