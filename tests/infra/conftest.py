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

# SPEC §3, §11 and §12: every call that can change a verdict under the default policy (which has
# an exempt tag, so tag changes count), directory buckets' (S3's names) and table buckets' own;
# with a grace period, creations have a rule of their own.
CREATIONS = ("CreateBucket", "CreateTableBucket")
TABLE_BUCKET_CALLS = (
    "CreateTableBucket",
    "PutTableBucketEncryption",
    "DeleteTableBucketEncryption",
    "DeleteTableBucket",
)
# §15: vector buckets (S3 Vectors) take their encryption at creation, bucket and index alike.
VECTOR_BUCKET_CALLS = ("CreateVectorBucket", "CreateIndex", "DeleteIndex", "DeleteVectorBucket")
WATCHED = (
    "CreateBucket",
    "PutBucketEncryption",
    "DeleteBucketEncryption",
    "DeleteBucket",
    *TABLE_BUCKET_CALLS,
    *VECTOR_BUCKET_CALLS,
    "PutBucketTagging",
    "DeleteBucketTagging",
    # S3 Control's tagging of a bucket ARN changes a bucket's tags too (s3control model).
    "TagResource",
    "UntagResource",
)
IMMEDIATE = tuple(name for name in WATCHED if name not in CREATIONS)
# §15: one Slack and one Teams channel, with ids of the shapes Chatbot accepts.
CHAT = {
    "slack": [{"workspaceId": "T07EZ1ABC", "channelId": "C07EZ1ABC23"}],
    "teams": [
        {
            "teamId": "74361522-da01-538d-aa2e-ac7918c6bb92",
            "channelId": "19%3ab6ef35dc342d56ba5654e6fc6d25a071%40thread.tacv2",
            "tenantId": "a1b2c3d4-0000-1111-2222-333344445555",
        }
    ],
}


# Every general purpose bucket of the deployment's partition (never a literal arn:aws).
ALL_BUCKETS = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::*"]]}


def s3_pattern(*event_names: str) -> dict[str, Any]:
    """The pattern of an S3 rule, on a default bus or the central one: successful calls only,
    of general purpose, directory (S3 Express), table (S3 Tables) and vector (S3 Vectors)
    buckets: the event source exactly, the EventBridge source by its prefix (S3 Tables' spelling
    is documented nowhere)."""
    return {
        "source": [{"prefix": "aws.s3"}],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": [
                "s3.amazonaws.com",
                "s3express.amazonaws.com",
                "s3tables.amazonaws.com",
                "s3vectors.amazonaws.com",
            ],
            "eventName": list(event_names),
            "errorCode": [{"exists": False}],
        },
    }


# Forwarders send every watched event; the monitor's own rules split them.
S3_PATTERN = s3_pattern(*WATCHED)


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
