"""The functions' asset ships the AWS SDK the tests ran (SPEC §12), built without Docker."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra import asset
from infra.asset import SERVICES, AssetError, function_asset, locked_versions

FUNCTIONS = Path(asset.FUNCTION_CODE) / "drift_monitor"


def test_the_asset_holds_our_code_and_the_locked_sdk() -> None:
    path, asset_hash = function_asset()
    versions = locked_versions()

    assert (path / "drift_monitor" / "handler.py").read_bytes() == (
        FUNCTIONS / "handler.py"
    ).read_bytes()
    for name, directory in (("boto3", "boto3"), ("botocore", "botocore")):
        (metadata,) = path.glob(f"{directory}-*.dist-info/METADATA")
        assert f"\nVersion: {versions[name]}\n" in metadata.read_text()
    assert len(asset_hash) == 64 and asset_hash[:16] in path.name
    assert not list(path.rglob("__pycache__"))


def test_the_shipped_sdk_alone_creates_every_client_and_knows_blocked_encryption_types() -> None:
    path, _ = function_asset()
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import boto3, botocore;"
        "session = boto3.Session(region_name='eu-west-1', aws_access_key_id='x',"
        " aws_secret_access_key='x');"
        "[session.client(name) for name in sys.argv[2:]];"
        "rule = session.client('s3').meta.service_model.shape_for('ServerSideEncryptionRule');"
        "print(botocore.__file__, botocore.__version__, 'BlockedEncryptionTypes' in rule.members)"
    )
    # -S: no site-packages, so nothing but the asset and the standard library can be imported.
    done = subprocess.run(
        [sys.executable, "-S", "-c", script, str(path), *SERVICES],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    location, version, blocked = done.stdout.split()
    assert location.startswith(str(path))
    assert version == locked_versions()["botocore"]
    assert blocked == "True"


def test_every_service_a_function_calls_is_shipped() -> None:
    source = "\n".join(path.read_text() for path in FUNCTIONS.glob("*.py"))
    called = set(re.findall(r"client\(\s*\"([a-z0-9-]+)\"", source))

    assert called <= set(SERVICES), called - set(SERVICES)
    assert {"s3", "sts", "kms", "resourcegroupstaggingapi"} <= called


def test_an_environment_that_differs_from_the_lock_stops_the_synth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(asset, "locked_versions", lambda: {"boto3": "0.0.1"})
    function_asset.cache_clear()
    try:
        with pytest.raises(AssetError, match=r"boto3 .* is installed but requirements.lock pins"):
            function_asset()
    finally:
        function_asset.cache_clear()


def test_the_asset_is_built_from_scratch_when_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(asset, "BUILD", tmp_path)
    function_asset.cache_clear()
    try:
        path, _ = function_asset()
    finally:
        function_asset.cache_clear()

    assert path.parent == tmp_path
    assert (path / "botocore" / "data" / "s3").is_dir()
    assert not (path / "botocore" / "data" / "ec2").exists()  # a service no function calls
    assert (path / "botocore" / "data" / "endpoints.json").is_file()
    assert not list(tmp_path.glob("*.partial"))
