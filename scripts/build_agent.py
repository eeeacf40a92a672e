"""Build the playout agent's wheel and its offline bundles for playout PCs.

    python scripts/build_agent.py --platform win_amd64 -o dist/
    python scripts/build_agent.py --platform manylinux_x86_64 -o dist/
    python scripts/build_agent.py --platform manylinux_aarch64 -o dist/
    python scripts/build_agent.py --wheel-only -o dist/

A bundle, `DIR/loaxa-agent-<version>-<platform>.zip`, holds one folder with the agent's wheel,
the wheel of every dependency for that platform and each Python version in
--python-versions (fetched by pip's own `download --platform`), an example configuration, the
install script (install.ps1 on Windows, install.sh and the systemd unit on Linux) and a
README.txt. A technician copies the zip to the playout PC, unzips it and runs one command;
nothing is fetched from the internet there.

The agent's wheel (`loaxa-agent`) is built with `pip wheel` from packaging/agent/pyproject.toml
and only these files: app/__init__.py, app/playout/__init__.py, app/playout/agent/*.py.
Downloaded wheels are kept in --wheel-cache (default var/agent-wheels) and used from there
first, so that a second build needs no network.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGING = REPO / "packaging" / "agent"
DEFAULT_CACHE = REPO / "var" / "agent-wheels"

# pip's --platform tags per bundle. Linux: glibc 2.17 (manylinux2014) and later, which every
# supported board image has; a manylinux_2_28 wheel would not install on older ones.
PLATFORMS: dict[str, list[str]] = {
    "win_amd64": ["win_amd64"],
    "manylinux_x86_64": ["manylinux2014_x86_64", "manylinux_2_17_x86_64"],
    "manylinux_aarch64": ["manylinux2014_aarch64", "manylinux_2_17_aarch64"],
}
# The CPython versions a bundle installs on (one pydantic-core wheel each; the rest is pure).
DEFAULT_PYTHONS = ("3.11", "3.12", "3.13")


class BuildError(Exception):
    """A step of the build failed; the message says which."""


def version() -> str:
    """The agent's version: app.__version__, read without importing the app."""
    text = (REPO / "app" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if not match:
        raise BuildError("no __version__ in app/__init__.py")
    return match.group(1)


def agent_sources() -> list[Path]:
    """The files the agent's wheel holds, relative to the repository."""
    files = [Path("app/__init__.py"), Path("app/playout/__init__.py")]
    files += sorted(p.relative_to(REPO) for p in (REPO / "app/playout/agent").glob("*.py"))
    return files


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise BuildError(f"{what} failed ({' '.join(argv[:4])} ...):\n{tail}")


def build_wheel(out_dir: Path) -> Path:
    """Build the `loaxa-agent` wheel into `out_dir`; its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="loaxa-agent-build-") as tmp:
        src = Path(tmp)
        shutil.copy2(PACKAGING / "pyproject.toml", src / "pyproject.toml")
        for rel in agent_sources():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
        wheels = Path(tmp) / "out"
        _run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(src)],
            "building the agent's wheel",
        )
        [built] = wheels.glob("loaxa_agent-*.whl")
        target = out_dir / built.name
        shutil.copy2(built, target)
    return target


def _download_args(platform: str, python: str, dest: Path, requirement: Path) -> list[str]:
    args = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:"]
    for tag in PLATFORMS[platform]:
        args += ["--platform", tag]
    return [
        *args,
        "--python-version",
        python,
        "--implementation",
        "cp",
        "--dest",
        str(dest),
        str(requirement),
    ]


def download_dependencies(
    wheel: Path, platform: str, dest: Path, *, cache: Path, pythons: tuple[str, ...]
) -> list[Path]:
    """Put the agent's wheel and its dependencies' wheels for `platform` into `dest`.

    First from the cache alone; what the cache lacks is downloaded into it from the package
    index and taken from there. A failed download (no network) is an error.
    """
    dest.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    for python in pythons:
        offline = [*_download_args(platform, python, dest, wheel), "--no-index"]
        offline += ["--find-links", str(cache)]
        if subprocess.run(offline, capture_output=True).returncode == 0:
            continue
        _run(
            [*_download_args(platform, python, cache, wheel), "--find-links", str(cache)],
            f"downloading the agent's dependencies for {platform}, Python {python}",
        )
        (cache / wheel.name).unlink(missing_ok=True)  # the cache holds dependencies only
        _run(offline, f"taking the dependencies for {platform}, Python {python} from the cache")
    return sorted(dest.glob("*.whl"))


def _service_unit() -> str:
    """scripts/loaxa-agent.service, run from install.sh's venv (placeholders filled there)."""
    unit = (REPO / "scripts" / "loaxa-agent.service").read_text(encoding="utf-8")
    old = "ExecStart=/opt/loaxa/.venv/bin/loaxa agent --config /etc/loaxa/agent.toml"
    if old not in unit:
        raise BuildError(f"scripts/loaxa-agent.service has no line {old!r} to adapt")
    unit = unit.replace(old, "ExecStart=@PREFIX@/venv/bin/loaxa-agent --config @CONFIG@")
    unit = unit.replace(
        "Documentation=file:///opt/loaxa/scripts/agent.example.toml",
        "Documentation=file://@PREFIX@/agent.example.toml",
    )
    # The header's steps are what install.sh does; keep only the unit's own notes.
    body = unit[unit.index("# The agent plays through ALSA") :]
    return "# systemd unit for the loaxa playout agent, written by install.sh.\n#\n" + body


def build_bundle(
    platform: str,
    out_dir: Path,
    *,
    cache: Path = DEFAULT_CACHE,
    pythons: tuple[str, ...] = DEFAULT_PYTHONS,
) -> Path:
    """Build `out_dir/loaxa-agent-<version>-<platform>.zip`; its path."""
    if platform not in PLATFORMS:
        raise BuildError(f"unknown platform {platform!r}; one of {', '.join(PLATFORMS)}")
    name = f"loaxa-agent-{version()}-{platform}"
    windows = platform.startswith("win")
    with tempfile.TemporaryDirectory(prefix="loaxa-agent-bundle-") as tmp:
        root = Path(tmp) / name
        wheels = root / "wheels"
        wheel = build_wheel(Path(tmp) / "agent-wheel")
        download_dependencies(wheel, platform, wheels, cache=cache, pythons=pythons)
        if not (wheels / wheel.name).exists():
            shutil.copy2(wheel, wheels / wheel.name)
        example = "agent.windows.example.toml" if windows else "agent.example.toml"
        shutil.copy2(REPO / "scripts" / example, root / "agent.example.toml")
        if windows:
            for script in ("install.ps1", "run-agent.ps1"):
                shutil.copy2(PACKAGING / script, root / script)
        else:
            shutil.copy2(PACKAGING / "install.sh", root / "install.sh")
            (root / "loaxa-agent.service").write_text(_service_unit(), encoding="utf-8")
        readme = (PACKAGING / "README.txt").read_text(encoding="utf-8")
        (root / "README.txt").write_text(
            readme.replace("@VERSION@", version()).replace("@PLATFORM@", platform),
            encoding="utf-8",
            newline="\r\n" if windows else "\n",
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"{name}.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    info = zipfile.ZipInfo.from_file(path, path.relative_to(root.parent))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    if path.suffix == ".sh":
                        info.external_attr = 0o755 << 16  # for unzip; install.sh runs via sh
                    zf.writestr(info, path.read_bytes())
    return target


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--platform", choices=sorted(PLATFORMS), help="build this bundle")
    what.add_argument("--wheel-only", action="store_true", help="build the agent's wheel only")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("--wheel-cache", type=Path, default=DEFAULT_CACHE, help="downloaded wheels")
    p.add_argument(
        "--python-versions",
        default=",".join(DEFAULT_PYTHONS),
        help="CPython versions the bundle installs on (default %(default)s)",
    )
    args = p.parse_args(argv)
    try:
        if args.wheel_only:
            print(build_wheel(args.output))
            return 0
        pythons = tuple(v.strip() for v in args.python_versions.split(",") if v.strip())
        target = build_bundle(args.platform, args.output, cache=args.wheel_cache, pythons=pythons)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{target} ({target.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
