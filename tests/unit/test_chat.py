"""Alerts in chat (§15): each alert, notice and key summary is a custom notification of the
documented format, and a drift's RESOLVED notice shares its alert's thread."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from functions.drift_monitor.domain.alerts import build_alert, build_key_summary, build_notice
from functions.drift_monitor.domain.chat import chat_notification
from functions.drift_monitor.domain.evaluation import evaluate
from functions.drift_monitor.domain.events import parse_key_event
from functions.drift_monitor.domain.lifecycle import BucketState, fingerprint
from functions.drift_monitor.domain.models import (
    BucketRef,
    EncryptionRule,
    ObservedEncryption,
    Status,
)
from functions.drift_monitor.domain.policy import Policy
from tests.conftest import REPO, load_event
from tests.unit.test_alerts import TRIGGER

SCHEMA = json.loads((REPO / "tests" / "schemas" / "chatbot-custom-notification.json").read_text())
BUCKET = BucketRef("payments-ledger", "123456789012", "eu-west-1")
FIRST_DETECTED = "2026-11-20T10:15:31Z"
KEY_PREFIX = "arn:aws:kms:eu-west-1:123456789012:key"


def valid(notification: dict[str, Any]) -> dict[str, Any]:
    jsonschema.validate(notification, SCHEMA)
    return notification


def drift_and_notice() -> tuple[dict[str, Any], dict[str, Any]]:
    policy = Policy()
    drift = evaluate(ObservedEncryption(BUCKET, (EncryptionRule("AES256"),)), policy, TRIGGER)
    alert = build_alert(drift, policy, first_detected=FIRST_DETECTED).document
    fixed = evaluate(
        ObservedEncryption(
            BUCKET,
            (
                EncryptionRule(
                    "aws:kms", "arn:aws:kms:eu-west-1:123456789012:key/k", True, ("SSE-C",)
                ),
            ),
        ),
        policy,
        TRIGGER,
    )
    assert fixed.status is Status.COMPLIANT
    was = BucketState(
        status=drift.status,
        fingerprint=fingerprint(drift),
        evaluated_at=0,
        violations=tuple(v.code.value for v in drift.violations),
        first_detected=FIRST_DETECTED,
        alerted_fingerprint=fingerprint(drift),
    )
    notice = build_notice(fixed, was, policy, 3600).document
    return alert, notice


def test_an_alert_is_a_custom_notification_with_its_fix_as_next_step() -> None:
    alert, _ = drift_and_notice()

    notification = valid(chat_notification(alert))

    content = notification["content"]
    assert (notification["version"], notification["source"]) == ("1.0", "custom")
    assert content["title"].startswith(":red_circle: DRIFT MEDIUM: payments-ledger")
    assert "*ALGORITHM_NOT_ALLOWED*" in content["description"]
    assert "PutBucketEncryption by arn:aws:sts::123456789012:assumed-role" in content["description"]
    assert content["nextSteps"][0].startswith("Fix: `aws s3api put-bucket-encryption")
    assert "ALGORITHM_NOT_ALLOWED" in content["keywords"]
    assert notification["metadata"]["relatedResources"] == ["arn:aws:s3:::payments-ledger"]


def test_the_resolved_notice_lands_in_the_alert_s_thread() -> None:
    alert, notice = drift_and_notice()

    opened = valid(chat_notification(alert))
    closed = valid(chat_notification(notice))

    assert closed["metadata"]["threadId"] == opened["metadata"]["threadId"]
    assert closed["content"]["title"].startswith(":large_green_circle: RESOLVED: payments-ledger")
    assert "now compliant" in closed["content"]["description"]
    # another drift of the bucket, detected later, is another thread
    later = dict(alert, firstDetected="2026-11-21T08:00:00Z")
    assert chat_notification(later)["metadata"]["threadId"] != opened["metadata"]["threadId"]


def test_a_key_summary_is_a_custom_notification_too() -> None:
    change = parse_key_event(load_event("disable-key.json"))
    summary = build_key_summary(change, [BUCKET], alerted=1, resolved=0, queued=False)

    notification = valid(chat_notification(summary.document))

    assert notification["content"]["title"].startswith(":key: DisableKey on a KMS key 1 buckets")
    assert "`payments-ledger`" in notification["content"]["description"]


@pytest.mark.parametrize(
    "broken",
    [
        {"version": "2.0"},
        {"source": "aws.s3"},
        {"content": {"title": "no description"}},
        {"content": {"description": "x", "textType": "markdown"}},
        {"metadata": {"threadId": ""}},
    ],
)
def test_the_schema_refuses_what_chatbot_documents_as_invalid(broken: dict[str, Any]) -> None:
    """The check the tests rely on can fail."""
    alert, _ = drift_and_notice()
    notification = {**chat_notification(alert), **broken}

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(notification, SCHEMA)
