"""Names a package exports without importing their modules until first use.

A package whose names pull in heavy libraries (numpy, pandas, WeasyPrint) keeps them out of
every process that only imports the package for its light names::

    __getattr__, __dir__ = lazy_attributes(__name__, {"compute_drift": "drift"}, __all__)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_attributes(
    package: str, modules: Mapping[str, str], exported: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` for ``package``: a name of ``modules``
    (name -> submodule) is imported from ``package.<submodule>`` when first looked up, then
    kept on the package, so the lookup happens once."""
    names = tuple(exported)

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
