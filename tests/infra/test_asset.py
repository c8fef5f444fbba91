"""The functions' asset ships the AWS SDK the tests ran (SPEC §12), built without Docker."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from app import build_app
from infra import asset, functions
from infra.asset import (
    RUNTIME_VERSION,
    SERVICES,
    Asset,
    AssetError,
    build,
    function_asset,
    locked_versions,
    runtime_python,
)
from infra.functions import RUNTIME
from tests.infra.conftest import CDK_JSON_CONTEXT

FUNCTIONS = Path(asset.FUNCTION_CODE) / "drift_monitor"


def test_the_asset_holds_our_code_and_the_locked_sdk() -> None:
    path, asset_hash = function_asset().path, function_asset().hash
    versions = locked_versions()

    assert (path / "drift_monitor" / "handlers" / "event.py").read_bytes() == (
        FUNCTIONS / "handlers" / "event.py"
    ).read_bytes()
    for name, directory in (("boto3", "boto3"), ("botocore", "botocore")):
        (metadata,) = path.glob(f"{directory}-*.dist-info/METADATA")
        assert f"\nVersion: {versions[name]}\n" in metadata.read_text()
    assert len(asset_hash) == 64 and asset_hash[:16] in path.name


def test_the_asset_ships_bytecode_of_the_runtimes_python_never_checked_against_sources() -> None:
    # The build machines have the runtime's Python (CI too): without it this fails, as it should
    interpreter = runtime_python()
    assert interpreter is not None, "no Python {}.{} on this machine".format(*RUNTIME_VERSION)
    assert RUNTIME.name == "python{}.{}".format(*RUNTIME_VERSION)  # what Lambda runs
    built = function_asset()
    tag = "cpython-{}{}".format(*RUNTIME_VERSION)

    assert built.bytecode_by == interpreter
    for module in ("botocore/client.py", "boto3/session.py", "drift_monitor/handlers/event.py"):
        source = built.path / module
        (pyc,) = source.parent.glob(f"__pycache__/{source.stem}.{tag}.pyc")
        # PEP 552 flags: hash-based (bit 0), source not checked (bit 1 clear): CDK zips every
        # file with the same date, so a timestamp check would be meaningless
        assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01, module
        # and tracebacks name the file where Lambda unpacks it
        assert f"/var/task/{module}".encode() in pyc.read_bytes(), module


def test_without_the_runtimes_python_the_asset_ships_no_bytecode(tmp_path: Path) -> None:
    build(tmp_path / "asset", None)

    assert (tmp_path / "asset" / "drift_monitor" / "handlers" / "event.py").is_file()
    assert not list((tmp_path / "asset").rglob("__pycache__"))


@pytest.mark.parametrize("chosen", ["/nonexistent/python3.13", sys.executable])
def test_a_chosen_interpreter_of_another_version_is_not_used(
    monkeypatch: pytest.MonkeyPatch, chosen: str
) -> None:
    # RUNTIME_PYTHON names the interpreter; one that does not run, or runs another version
    # (this test's own Python), is passed over for the next candidate
    monkeypatch.setenv("RUNTIME_PYTHON", chosen)

    found = runtime_python()

    assert found != chosen
    assert found is None or asset._version_of(found) == RUNTIME_VERSION


def test_the_shipped_sdk_alone_creates_every_client_and_knows_blocked_encryption_types() -> None:
    path = function_asset().path
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
    source = "\n".join(path.read_text() for path in FUNCTIONS.rglob("*.py"))
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
        path = function_asset().path
    finally:
        function_asset.cache_clear()

    assert path.parent == tmp_path
    assert (path / "botocore" / "data" / "s3").is_dir()
    assert not (path / "botocore" / "data" / "ec2").exists()  # a service no function calls
    assert (path / "botocore" / "data" / "endpoints.json").is_file()
    assert not list(tmp_path.glob("*.partial"))


def test_a_synth_without_the_runtimes_python_warns_on_every_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = function_asset()
    monkeypatch.setattr(functions, "function_asset", lambda: Asset(built.path, built.hash, None))
    app = build_app(context=CDK_JSON_CONTEXT)
    stack = app.node.find_child("S3EncryptionDriftMonitor")

    report = json.loads((Path(app.synth().directory) / "validation-report.json").read_text())

    # Then every function carries the warning (a warning: the synth still succeeds)
    (warning,) = [
        violation
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        if violation["ruleName"] == "Annotation::s3-encryption-monitor:no-bytecode"
    ]
    assert warning["severity"] == "warning"
    flagged = {construct["constructPath"] for construct in warning["violatingConstructs"]}
    functions_of_stack = Template.from_stack(stack).find_resources("AWS::Lambda::Function")  # type: ignore[arg-type]
    assert len(flagged) == len(functions_of_stack) >= 3
