"""The K-weighting filter (BS.1770-4) for 44.1 kHz, without importing ``scipy.signal``.

``scipy.signal`` takes ~0.6 s and ~80 MB to import (its package loads every submodule,
special functions and sparse matrices included), and pyloudnorm imports it too. Measuring
needs one function of it, ``sosfilt``, whose work is done by the compiled module
``scipy.signal._sosfilt``: that module is loaded here on its own (0.04 s), under its own
name, so that a later ``import scipy.signal`` finds and reuses it. Should scipy's layout
change, ``scipy.signal.sosfilt`` is imported instead (slower start, same result).

The coefficients are pyloudnorm's K-weighting (high shelf, then the RLB high-pass) at
44.1 kHz, as second-order sections normalised to a0 = 1; a test checks them against
pyloudnorm's own filters.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

K_WEIGHTING_SOS = np.array(
    [
        (1.5309095946396625, -2.651169032402396, 1.1691668584809876,
         1.0, -1.663750110244495, 0.7126575309627482),
        (0.994607809439911, -1.989215618879822, 0.994607809439911,
         1.0, -1.9892010416922554, 0.9892301960673886),
    ]
)  # fmt: skip

_NAME = "scipy.signal._sosfilt"


def _compiled() -> Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None:
    """scipy's compiled ``_sosfilt(sos, x, zi)`` (in place), loaded alone; None if absent."""
    loaded = sys.modules.get(_NAME)
    if loaded is None:
        spec = importlib.util.find_spec("scipy")
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = Path(next(iter(spec.submodule_search_locations))) / "signal"
        found = [
            folder / f"_sosfilt{suffix}"
            for suffix in importlib.machinery.EXTENSION_SUFFIXES
            if (folder / f"_sosfilt{suffix}").is_file()
        ]
        if not found:
            return None
        module_spec = importlib.util.spec_from_file_location(_NAME, found[0])
        if module_spec is None or module_spec.loader is None:
            return None
        loaded = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(loaded)
        sys.modules[_NAME] = loaded
    return getattr(loaded, "_sosfilt", None)


try:
    _SOSFILT = _compiled()
except (ImportError, OSError):  # pragma: no cover - scipy's layout changed
    _SOSFILT = None


def sosfilt(sos: np.ndarray, x: np.ndarray, zi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``scipy.signal.sosfilt(sos, x, zi=zi)`` for a 1-D float64 x: (filtered, final state).
    x is filtered in place when it is a contiguous float64 array of its own."""
    if _SOSFILT is None:  # pragma: no cover - scipy's layout changed
        from scipy.signal import sosfilt as public

        return public(sos, x, zi=zi)
    signal = np.ascontiguousarray(x, dtype=np.float64).reshape(1, -1)
    state = np.array(zi, dtype=np.float64).reshape(1, sos.shape[0], 2)
    _SOSFILT(np.ascontiguousarray(sos, dtype=np.float64), signal, state)
    return signal.reshape(-1), state.reshape(sos.shape[0], 2)
