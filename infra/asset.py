"""The functions' asset: our code plus the AWS SDK the tests ran, from requirements.lock.

Lambda's Python runtime carries a boto3 of its own that lags behind releases; one older than
botocore 1.41 silently drops ``BlockedEncryptionTypes`` (so ``requireSseCBlocked`` would flag every
bucket). The asset therefore ships boto3, botocore and their dependencies as installed in this
project's environment (pip, ``--require-hashes``, from requirements.lock): pure Python, no Docker.
botocore keeps the models of the services the functions call only (28 MB of models become ~3 MB).

Lambda's ``/var/task`` is read-only, so a module without bytecode there is compiled at every cold
start (~200 ms for botocore). The asset is therefore compiled at build time by the runtime's own
Python version (bytecode is version-specific): ``RUNTIME_VERSION``, found as ``RUNTIME_PYTHON``,
``python3.13`` on the PATH or a pyenv installation. Without one the asset ships without bytecode
(and synth warns). Hash-based bytecode that is never checked against the sources, since CDK zips
every file with the same date.

The asset is built once per content (a hash of our code, the pinned versions, the services and
the bytecode's Python) under ``.build/`` and reused by every synth.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FUNCTION_CODE = REPO / "functions"
LOCK = REPO / "requirements.lock"
BUILD = REPO / ".build"
# The AWS SDK and what it imports, as requirements.lock pins them.
SDK_DISTRIBUTIONS = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
)
# Every service a function creates a client for (functions/drift_monitor).
SERVICES = (
    "dynamodb",
    "events",
    "kms",
    "organizations",
    "resourcegroupstaggingapi",
    "s3",
    "s3tables",
    "s3vectors",
    "securityhub",
    "sns",
    "sqs",
    "sts",
    # No function calls X-Ray, but the Powertools layer ships the X-Ray SDK, which builds an
    # X-Ray client when it is imported outside Lambda (no LAMBDA_TASK_ROOT), and the asset's
    # botocore is the one every layer uses: a function that imports it must not fail to start.
    "xray",
)


# The Lambda runtime's Python (infra/functions.py RUNTIME): the bytecode must be this version's.
RUNTIME_VERSION = (3, 13)
LAMBDA_TASK_ROOT = "/var/task"  # where Lambda unpacks the asset
# Hash-based bytecode never checked against the sources (CDK zips every file with one date);
# -s/-p below: tracebacks name the files where Lambda puts them, not the build folder.
_COMPILE_OPTIONS = ("-q", "-j", "0", "--invalidation-mode", "unchecked-hash")


@dataclass(frozen=True)
class Asset:
    path: Path
    hash: str
    bytecode_by: str | None  # the interpreter that compiled it; None: shipped without bytecode


class AssetError(RuntimeError):
    """The environment does not hold what requirements.lock pins."""


def locked_versions(lock: Path = LOCK) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", lock.read_text(), flags=re.MULTILINE)
    wanted = {_canonical(name) for name in SDK_DISTRIBUTIONS}
    return {_canonical(name): pinned for name, pinned in pins if _canonical(name) in wanted}


def runtime_python() -> str | None:
    """An interpreter of ``RUNTIME_VERSION``, or None when this machine has none."""
    name = "python{}.{}".format(*RUNTIME_VERSION)
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [
        os.environ.get("RUNTIME_PYTHON"),
        shutil.which(name),
        *(
            str(found)
            for found in sorted(pyenv.glob("{}.{}.*/bin/".format(*RUNTIME_VERSION) + name))
        ),
    ]
    for candidate in candidates:
        if candidate and _version_of(candidate) == RUNTIME_VERSION:
            return candidate
    return None


def _version_of(interpreter: str) -> tuple[int, int] | None:
    try:
        done = subprocess.run(  # noqa: S603 - this machine's interpreter, chosen by its user
            [interpreter, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return None
    parts = done.stdout.split()
    if done.returncode != 0 or len(parts) != 2:
        return None  # a pyenv shim of a version not selected, say
    return int(parts[0]), int(parts[1])


@cache
def function_asset() -> Asset:
    """The asset directory, its hash (the asset's identity for CDK) and how it was compiled."""
    versions = locked_versions()
    for name in SDK_DISTRIBUTIONS:
        try:
            installed = distribution(name).version
        except PackageNotFoundError as error:
            raise AssetError(f"{name} is not installed: run `make setup`") from error
        if installed != versions.get(_canonical(name)):
            raise AssetError(
                f"{name} {installed} is installed but requirements.lock pins "
                f"{versions.get(_canonical(name))}: run `make setup`"
            )
    digest = hashlib.sha256()
    for path in _our_files():
        digest.update(str(path.relative_to(FUNCTION_CODE)).encode())
        digest.update(path.read_bytes())
    digest.update(repr(sorted(versions.items())).encode())
    digest.update(repr(SERVICES).encode())
    interpreter = runtime_python()
    # How it is compiled is part of its content: a change of options builds it anew.
    compiled = (RUNTIME_VERSION, LAMBDA_TASK_ROOT, _COMPILE_OPTIONS) if interpreter else None
    digest.update(repr(compiled).encode())
    asset_hash = digest.hexdigest()
    target = BUILD / f"function-asset-{asset_hash[:16]}"
    if not target.exists():
        build(target, interpreter)
    return Asset(target, asset_hash, interpreter)


def build(target: Path, interpreter: str | None) -> None:
    """Our code and the SDK into ``target``, compiled by ``interpreter`` when there is one."""
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for path in _our_files():
        _copy(path, staging / path.relative_to(FUNCTION_CODE))
    for name in SDK_DISTRIBUTIONS:
        dist = distribution(name)
        for file in dist.files or ():
            relative = Path(str(file))
            if relative.is_absolute() or ".." in relative.parts or _skipped(relative):
                continue  # scripts installed outside site-packages, caches
            if _unused_model(relative):
                continue
            _copy(Path(str(dist.locate_file(file))), staging / relative)
    if interpreter:
        subprocess.run(  # noqa: S603 - this machine's interpreter, chosen by its user
            [interpreter, "-m", "compileall", *_COMPILE_OPTIONS,
             "-s", str(staging), "-p", LAMBDA_TASK_ROOT, str(staging)],
            check=True,
            capture_output=True,
        )  # fmt: skip
    # Several builds may race (parallel synths): the first rename wins, the others are equal.
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


def _our_files() -> list[Path]:
    return sorted(
        path
        for path in FUNCTION_CODE.rglob("*")
        if path.is_file() and not _skipped(path.relative_to(FUNCTION_CODE))
    )


def _skipped(relative: Path) -> bool:
    return any(part == "__pycache__" or part.startswith(".") for part in relative.parts) or (
        relative.suffix == ".pyc"
    )


def _unused_model(relative: Path) -> bool:
    """botocore/data/<service>/... of a service no function calls."""
    parts = relative.parts
    if parts[:2] != ("botocore", "data") or len(parts) < 4:
        return False  # botocore's code and its top-level data (endpoints, partitions, retries)
    return parts[2] not in SERVICES


def _copy(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, destination)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
