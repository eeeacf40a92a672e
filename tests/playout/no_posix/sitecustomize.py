"""Imported at start-up by every Python process whose PYTHONPATH begins with this folder.

It hides what the playout agent must not need, as on Windows: `import fcntl` raises
ImportError and libc's `prctl` cannot be found through ctypes. tests/playout/test_portable.py
runs the agent's test suite (and the agents it starts as processes) this way.
"""

import ctypes
import os
import sys

os.environ["LOAXA_TEST_NO_POSIX"] = "1"
sys.modules["fcntl"] = None  # type: ignore[assignment]  # `import fcntl` -> ImportError


class _CDLLWithoutPrctl(ctypes.CDLL):
    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        if name == "prctl":
            raise AttributeError(name)
        return super().__getattr__(name)


ctypes.CDLL = _CDLLWithoutPrctl  # type: ignore[misc]
