"""Module paths of sb3-crptpro 0.1.0 that still import (issue 16 moved every module into a stage sub-package).

Models, replay buffers and checkpoints saved by 0.1.0 name their classes by module path (SB3 pickles
``features_extractor_class``, ``replay_buffer_class`` and ``EncoderWeights`` with cloudpickle, which stores a class
by reference), and copied hyperparameter files may import ``sb3_crptpro.sac``. An import of an old path returns the
module at its new path (the same object) and raises a ``DeprecationWarning`` that names the new path; new code
imports public names from ``sb3_crptpro`` itself.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import CodeType, ModuleType

#: 0.1.0 path -> 0.2.0 path
MOVED_MODULES = {
    f"sb3_crptpro.{old}": f"sb3_crptpro.{new}"
    for old, new in {
        "_gl": "common._gl",
        "networks": "common.networks",
        "artifact": "common.artifact",
        "pretrain": "pretraining.pretrainer",
        "losses": "pretraining.losses",
        "augment": "pretraining.augment",
        "diagnostics": "pretraining.diagnostics",
        "probe": "pretraining.probe",
        "pipeline": "pretraining.pipeline",
        "extractor": "sb3.extractor",
        "spaces": "sb3.spaces",
        "encode": "sb3.encode",
        "reward": "sb3.reward",
        "overlap": "sb3.overlap",
        "sac": "sb3.sac",
        "buffers": "sb3.buffers",
        "presets": "sb3.presets",
        "cli": "app.cli",
        "demo": "app.demo",
        "training": "app.training",
        "train_checkpoint": "app.train_checkpoint",
        "evaluation": "app.evaluation",
        "report": "app.report",
        "inspection": "app.inspection",
        "render_demo": "app.render_demo",
        "progress": "app.progress",
    }.items()
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old paths of :data:`MOVED_MODULES` and loads them as the module at the new path."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED_MODULES[spec.name]
        warnings.warn(f"{spec.name} moved to {new} in sb3-crptpro 0.2.0; import public names from sb3_crptpro",
                      DeprecationWarning, stacklevel=2)  # fmt: skip
        return importlib.import_module(new)  # the new module object, so old and new paths share every class

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module was imported at its new path."""

    def get_code(self, fullname: str) -> CodeType | None:
        """The new module's code, so that ``python -m sb3_crptpro.cli`` (runpy) still runs."""
        new = MOVED_MODULES[fullname]
        spec = importlib.util.find_spec(new)
        loader = spec.loader if spec is not None else None
        return loader.get_code(new) if isinstance(loader, importlib.abc.InspectLoader) else None


def install_moved_module_finder() -> None:
    """Make the 0.1.0 paths importable (idempotent; run by ``import sb3_crptpro``)."""
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
