"""Test-wide guards: a supported Node for jsii, and no way to reach real AWS."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from local.emulator import moto_server

REPO = Path(__file__).resolve().parent.parent
EVENTS = Path(__file__).resolve().parent / "events"

# jsii (behind aws_cdk) runs `node` from PATH: the pinned Node 22 from package.json, not Node 20.
os.environ["PATH"] = f"{REPO / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"
# Dummy credentials and no metadata probing: a test that forgot an endpoint fails, it never
# reaches a real account.
for name, value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "CDK_DISABLE_CLI_TELEMETRY": "true",
}.items():
    os.environ[name] = value
os.environ.pop("AWS_PROFILE", None)


# The fields of the alert document, SPEC §6.
ALERT_KEYS = frozenset(
    {
        "schemaVersion",
        "status",
        "severity",
        "bucket",
        "account",
        "region",
        "bucketKind",
        "bucketArn",
        "trigger",
        "observed",
        "violations",
        "policy",
        "remediation",
        "fingerprint",
        "firstDetected",
        "keys",
        "autoRemediation",
        "exception",  # §15
        "exemptViolations",  # §15
    }
)


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


@pytest.fixture
def event_fixture() -> Any:
    return load_event


def pytest_report_header() -> str:
    """Which Python runs the functions as Lambda would (local/lambda_runtime.py)."""
    from local.lambda_runtime import lambda_runtime  # noqa: PLC0415 - installs the layer folder

    return f"Lambda functions run in {lambda_runtime().description}"


@pytest.fixture(scope="session")
def emulator() -> Any:
    """moto in server mode on 127.0.0.1, one per test session."""
    with moto_server() as running:
        yield running
