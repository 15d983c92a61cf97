"""Small helpers shared by the package's modules: lazy public names, versioned-format checks, file permissions."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

from sb3_crptpro._version import __version__


def lazy_attributes(
    package: str, module_of: dict[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__``/``__dir__`` for a package whose public names are imported on first use (PEP 562).

    :param package: the package's ``__name__``
    :param module_of: public name -> module that defines it
    :param namespace: the package's ``globals()`` (imported names are cached there)
    """

    def __getattr__(name: str) -> Any:
        if name in module_of:
            value = getattr(importlib.import_module(module_of[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(namespace.get("__all__", module_of))

    return __getattr__, __dir__


def check_format(document: dict[str, Any], *, source: str, name: str, max_version: int, error: type[Exception]) -> None:
    """Refuse a file that is not ``name`` or whose ``format_version`` is newer than ``max_version``."""
    if document.get("format") != name:
        raise error(f"{source} is not a {name} file")
    version = document.get("format_version")
    if not isinstance(version, int) or version > max_version:
        raise error(
            f"{source} has format version {version!r}, newer than this sb3-crptpro {__version__} understands "
            f"(<= {max_version}); upgrade sb3-crptpro to read it"
        )


def _umask() -> int:
    # read and restore: the only portable way to learn the umask
    mask = os.umask(0)
    os.umask(mask)
    return mask


def give_default_permissions(path: str | os.PathLike[str]) -> None:
    """Give a file the mode a plain ``open(path, "w")`` would (``0o666`` less the umask; issue 14).

    Temporary files that are renamed into place (atomic writes, ``safetensors``) are created ``0600``; without this
    an artifact on a shared disk would be unreadable by the user's colleagues.
    """
    os.chmod(path, 0o666 & ~_umask())


def platform_description(device: Any = "cpu") -> str:
    """Where a run trained, e.g. ``torch 2.13.0+cpu on cpu (CPU kernels AVX512, x86_64)``.

    Float kernels differ per CPU type, so the same command and seed give slightly different weights on machines whose
    kernels differ (measured: AVX2 against AVX-512 after 10 pretraining updates; docs page Pretrained encoders).
    Recorded as ``provenance["platform"]`` of pretrained artifacts and in the benchmarks' run records.

    :param device: the torch device the run used (a ``torch.device`` or its name)
    """
    import platform

    import torch

    return (
        f"torch {torch.__version__} on {device} (CPU kernels {torch.backends.cpu.get_cpu_capability()}, "
        f"{platform.machine()})"
    )
