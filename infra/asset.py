"""The functions' asset: our code plus the AWS SDK the tests ran, from requirements.lock.

Lambda's Python runtime carries a boto3 of its own that lags behind releases; one older than
botocore 1.41 silently drops ``BlockedEncryptionTypes`` (so ``requireSseCBlocked`` would flag every
bucket). The asset therefore ships boto3, botocore and their dependencies as installed in this
project's environment (pip, ``--require-hashes``, from requirements.lock): pure Python, no Docker.
botocore keeps the models of the services the functions call only (28 MB of models become ~3 MB).
The asset is built once per content (a hash of our code, the pinned versions and the services)
under ``.build/`` and reused by every synth.
"""

from __future__ import annotations

import hashlib
import re
import shutil
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
    "securityhub",
    "sns",
    "sqs",
    "sts",
)


class AssetError(RuntimeError):
    """The environment does not hold what requirements.lock pins."""


def locked_versions(lock: Path = LOCK) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", lock.read_text(), flags=re.MULTILINE)
    wanted = {_canonical(name) for name in SDK_DISTRIBUTIONS}
    return {_canonical(name): pinned for name, pinned in pins if _canonical(name) in wanted}


@cache
def function_asset() -> tuple[Path, str]:
    """The asset directory and its hash (the asset's identity for CDK)."""
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
    asset_hash = digest.hexdigest()
    target = BUILD / f"function-asset-{asset_hash[:16]}"
    if not target.exists():
        _build(target)
    return target, asset_hash


def _build(target: Path) -> None:
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
