"""Package faces whose names are imported on first use (PEP 562), so that `from featviz_core import
FeatvizError` or a cached dashboard view does not import torch: only the module a name lives in is
imported, when the name is first read.

    __getattr__, __dir__, __all__ = lazy_names(__name__, {".errors": "FeatvizError", ".jobs.runner": "collect"})

tests/test_structure.py reads these maps as the imports they are.
"""
from __future__ import annotations

import importlib
import sys
from typing import Callable


def lazy_names(package: str, modules: dict[str, str]) -> tuple[Callable, Callable, list[str]]:
    """`__getattr__`, `__dir__` and `__all__` for `package`: {module, relative to the package as in a
    `from .x import` (".card", "..spec.layers"): "its public names, space separated"}."""
    where = {name: module for module, names in modules.items() for name in names.split()}

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name], package), name)
        setattr(sys.modules[package], name, value)  # read once: later reads are plain attributes
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__, sorted(where)
