"""SCTBench programs ported to Python, in the bugzoo case format.

Each module is one program of SCTBench's ``CS`` set (and CHESS's
WorkStealQueue) as Fray's benchmark uses them, with a corrected twin; the
format is described in ``shared/bugzoo/README.md``.  jostle loads this
folder as the package ``sctbench`` (its parent directory on ``sys.path``),
so it can be measured in one run with bugzoo's ``cases``:
``python -m bench findings --cases ../shared/bugzoo/cases bench/cases/sctbench ...``.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

_HERE = os.path.dirname(os.path.abspath(__file__))


def case_ids() -> list[str]:
    """Ids of all cases, sorted (module names without the leading package)."""
    return sorted(f[:-3] for f in os.listdir(_HERE)
                  if f.endswith(".py") and not f.startswith("_"))


def load(case_id: str) -> ModuleType:
    """The case module ``case_id`` of this package."""
    return importlib.import_module(f"{__name__}.{case_id}")


def load_all() -> list[ModuleType]:
    """Every case module, in id order."""
    return [load(c) for c in case_ids()]
