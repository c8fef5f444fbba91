from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Template

from app import build_app
from tests.conftest import REPO

CDK_JSON_CONTEXT: dict[str, Any] = json.loads((REPO / "cdk.json").read_text())["context"]

BuildTemplate = Callable[..., Template]

# SPEC §3: the pattern every S3 rule has, on a default bus or the central one.
S3_PATTERN = {
    "source": ["aws.s3"],
    "detail-type": ["AWS API Call via CloudTrail"],
    "detail": {
        "eventSource": ["s3.amazonaws.com"],
        "eventName": ["CreateBucket", "PutBucketEncryption", "DeleteBucketEncryption"],
        "errorCode": [{"exists": False}],
    },
}


def synthesize(**context: Any) -> Template:
    """The stack as `cdk synth` builds it: cdk.json's context (feature flags) plus overrides."""
    app = build_app(context={**CDK_JSON_CONTEXT, **context})
    stack = app.node.find_child("S3EncryptionDriftMonitor")
    return Template.from_stack(stack)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def template() -> Template:
    return synthesize()


@pytest.fixture
def build_template() -> BuildTemplate:
    return synthesize
