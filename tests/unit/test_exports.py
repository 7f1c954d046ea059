"""Every public module declares ``__all__``, every exported name exists, and the package's
public API resolves (including the names imported on first use)."""

from __future__ import annotations

import importlib
import pkgutil

import progress_bridge


def test_every_public_module_declares_all_and_its_names_exist() -> None:
    checked = 0
    for info in pkgutil.walk_packages(progress_bridge.__path__, "progress_bridge."):
        leaf = info.name.rsplit(".", 1)[-1]
        if leaf.startswith("_"):
            continue
        module = importlib.import_module(info.name)
        assert hasattr(module, "__all__"), f"{info.name} has no __all__"
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert not missing, f"{info.name}.__all__ names missing objects: {missing}"
        checked += 1
    assert checked > 40  # the walk found the subpackages


def test_package_exports_resolve() -> None:
    missing = [name for name in progress_bridge.__all__ if not hasattr(progress_bridge, name)]
    assert not missing
    assert len(set(progress_bridge.__all__)) == len(progress_bridge.__all__)
