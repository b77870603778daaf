"""The bridge's own wheel (`ichimai-bridge`), built from this platform's `bridge/` and
cached, so that what a library installs always matches the platform it pairs with.

How the platform gets it: on demand, then cached. The first download (or `flask --app
app bridge wheel`, which `make bridge-wheel` runs at deploy time) builds it with pip from
a staging copy of the shipped files (bridge/pyproject.toml lists them: not the virtual
card), into `BRIDGE_WHEEL_DIR/<digest>/`, where `<digest>` is a hash of those files: a
new platform version gets a new wheel, and a restart reuses the old one. Workers
building at once take turns on a lock file; the wheel appears by an atomic rename.
No network: pip runs with `--no-index --no-build-isolation` on the platform's own
setuptools (a dependency of the platform for this reason).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

import bridge

SOURCE = Path(bridge.__file__).resolve().parent
WHEEL_NAME = f"ichimai_bridge-{bridge.__version__}-py3-none-any.whl"
# What the wheel is built from (bridge/pyproject.toml ships these packages).
SHIPPED = ("pyproject.toml", "*.py", "sip2/*.py", "transports/*.py")
BUILD_TIMEOUT = 180.0
LOCK_WAIT = 200.0
# After a failed build, downloads answer at once for this long instead of building again:
# anyone can ask for the wheel, and a broken build must not become a process per request.
RETRY_AFTER_FAILURE = 60.0
_failed: dict[Path, tuple[float, str]] = {}


class WheelUnavailable(Exception):
    """The wheel could not be built (the log says why)."""


@cache
def shipped_files() -> tuple[Path, ...]:
    """The source files that go into the wheel, relative to bridge/."""
    found = {p.relative_to(SOURCE) for pattern in SHIPPED for p in SOURCE.glob(pattern)}
    return tuple(sorted(found))


@cache
def source_digest() -> str:
    """A hash of the shipped files: names and contents (the wheel's cache key)."""
    digest = hashlib.sha256()
    for rel in shipped_files():
        data = (SOURCE / rel).read_bytes()
        digest.update(f"{rel.as_posix()}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:16]


def wheel_path(cache_dir: Path) -> Path:
    """Where the wheel of this source lives in the cache."""
    return cache_dir / source_digest() / WHEEL_NAME


def ensure_wheel(cache_dir: Path) -> Path:
    """The built wheel: from the cache, or built now (once, whichever worker is first)."""
    path = wheel_path(cache_dir)
    if path.exists():
        return path
    failed = _failed.get(path)
    if failed is not None and time.monotonic() - failed[0] < RETRY_AFTER_FAILURE:
        raise WheelUnavailable(failed[1])
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / ".lock").open("w") as lock:
        _lock(lock.fileno())
        if path.exists():  # another worker built it while we waited
            return path
        try:
            _build(cache_dir, path)
        except WheelUnavailable as exc:
            _failed[path] = (time.monotonic(), str(exc))
            raise
    _failed.pop(path, None)
    return path


def _lock(fd: int) -> None:
    # Non-blocking tries with sleeps: a gevent worker must not block its whole loop.
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise WheelUnavailable("another process is still building the wheel") from None
            time.sleep(0.1)


def _build(cache_dir: Path, path: Path) -> None:
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".build-") as tmp:
        stage, out = Path(tmp) / "src", Path(tmp) / "out"
        for rel in shipped_files():
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(SOURCE / rel, stage / rel)
        argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index"]
        argv += ["--no-build-isolation", "--quiet", "--wheel-dir", str(out), str(stage)]
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv
                argv, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False, env=env
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise WheelUnavailable(f"building the bridge wheel failed: {exc}") from exc
        built = out / WHEEL_NAME
        if done.returncode != 0 or not built.exists():
            detail = (done.stderr or done.stdout).strip()[-2000:]
            raise WheelUnavailable(f"building the bridge wheel failed: {detail}")
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(built, path)


def main(argv: list[str] | None = None) -> int:
    """`python -m webapp.terminals.bridge_wheel [DIR]`: build into DIR (default
    $ICHIMAI_BRIDGE_WHEEL_DIR, else instance/bridge-wheel) without starting the app."""
    args = sys.argv[1:] if argv is None else argv
    default = os.environ.get("ICHIMAI_BRIDGE_WHEEL_DIR") or "instance/bridge-wheel"
    try:
        path = ensure_wheel(Path(args[0] if args else default).resolve())
    except WheelUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
