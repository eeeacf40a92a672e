"""Real loaxa processes for the fault tests, and a TCP proxy the test owns.

The processes run this checkout's code (`python -m app.cli`) with the test's environment
(its database, data directory and secret), on loopback ports.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loaxa_argv(*args: str) -> list[str]:
    """The command line of `loaxa ARGS` from this checkout."""
    return [sys.executable, "-m", "app.cli", *args]


def env_with(**overrides: str) -> dict[str, str]:
    """The test's environment, this checkout first on the path, and the overrides."""
    env = {**os.environ, **overrides}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_loaxa(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run `loaxa ARGS` to its end."""
    return subprocess.run(
        loaxa_argv(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or env_with(),
        cwd=REPO,
    )


@dataclass
class Served:
    """A `loaxa serve` process on a loopback port."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serving(
    log: Path, *, env: dict[str, str] | None = None, argv: Sequence[str] | None = None
) -> Iterator[Served]:
    """Start `loaxa serve` (or `argv`, which must serve on the port given as {port}) and wait
    until /healthz answers; stopped at the end."""
    port = free_port()
    command = (
        [a.replace("{port}", str(port)) for a in argv]
        if argv
        else loaxa_argv("serve", "--host", "127.0.0.1", "--port", str(port))
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env or env_with(), cwd=REPO
        )
    served = Served(proc, port, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited ({proc.returncode}):\n{served.output()}")
            with suppress(httpx.TransportError):
                if httpx.get(f"{served.url}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"the server did not start:\n{served.output()}"
            time.sleep(0.1)
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class TcpProxy:
    """Forwards 127.0.0.1:port to a target, until cut: then every connection is closed and
    new ones are refused (the listening socket is gone), as when a database server dies.
    `restore()` listens on the same port again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._accepting = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._accepting.start()
        return self

    def cut(self) -> None:
        """Close the listener and every open connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        if self._accepting is not None:
            self._accepting.join(timeout=5)
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    restore = start
    close = cut

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._conns |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._conns.discard(src)
            src.close()  # each socket is the source of one pump
