"""§15 key health at the edge: a KMS CloudTrail event becomes the key's ARN and who changed it,
and the summary says what the key event affects."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from functions.drift_monitor.domain.alerts import SUMMARY_BUCKETS, build_key_summary
from functions.drift_monitor.domain.events import (
    FailedCall,
    InvalidEvent,
    NotABucket,
    is_key_event,
    parse_key_event,
)
from functions.drift_monitor.domain.models import BucketKind, BucketRef
from tests.conftest import load_event

KEY = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def disable_key(**detail: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event("disable-key.json"))
    event["detail"].update(detail)
    return event


def test_a_disable_key_event_names_the_key_by_arn_and_the_actor() -> None:
    change = parse_key_event(disable_key())

    assert change.key_arn == KEY
    assert change.disables
    assert change.trigger.event_name == "DisableKey"
    assert change.trigger.actor == "arn:aws:iam::111122223333:user/Alice"
    assert change.trigger.event_id == "abcde202-ba1a-467c-b4ba-f729d45ae521"


def test_before_december_2022_the_key_id_is_placed_in_the_event_s_account_and_region() -> None:
    """Older records carry the key id only (no key ARN in responseElements or resources)."""
    change = parse_key_event(disable_key(responseElements=None, resources=[]))

    assert change.key_arn == KEY


@pytest.mark.parametrize(
    ("event_name", "disables"),
    [
        ("EnableKey", False),
        ("CancelKeyDeletion", False),
        ("ScheduleKeyDeletion", True),
        ("PutKeyPolicy", True),
        ("DeleteImportedKeyMaterial", True),
    ],
)
def test_every_key_event_of_section_15_is_understood(event_name: str, disables: bool) -> None:
    change = parse_key_event(disable_key(eventName=event_name))

    assert (change.key_arn, change.disables) == (KEY, disables)


def test_what_is_not_a_key_change_is_told_apart() -> None:
    assert is_key_event(disable_key())
    assert not is_key_event(load_event("put-bucket-encryption.json"))
    with pytest.raises(FailedCall):
        parse_key_event(disable_key(errorCode="AccessDeniedException"))
    with pytest.raises(NotABucket, match="CreateGrant does not change"):
        parse_key_event(disable_key(eventName="CreateGrant"))
    with pytest.raises(InvalidEvent, match="names no key"):
        parse_key_event(disable_key(responseElements=None, resources=[], requestParameters={}))
    with pytest.raises(InvalidEvent, match="is not a key id"):
        parse_key_event(
            disable_key(
                responseElements=None, resources=[], requestParameters={"keyId": "alias/x y"}
            )
        )


def test_the_summary_names_the_key_who_changed_it_and_how_many_buckets() -> None:
    change = parse_key_event(disable_key())
    buckets = [
        BucketRef(f"data-{n:03d}", "111122223333", "us-west-2", BucketKind.GENERAL_PURPOSE)
        for n in range(SUMMARY_BUCKETS + 5)
    ]

    summary = build_key_summary(change, buckets, alerted=0, resolved=0, queued=True)

    document = summary.document
    assert (document["status"], document["severity"], document["key"]) == (
        "KEY_CHANGE",
        "HIGH",
        KEY,
    )
    assert (document["account"], document["region"]) == ("111122223333", "us-west-2")
    assert document["affectedBuckets"] == SUMMARY_BUCKETS + 5
    assert len(document["buckets"]) == SUMMARY_BUCKETS and document["bucketsTruncated"]
    assert document["reevaluation"] == "queued"
    assert "DisableKey by arn:aws:iam::111122223333:user/Alice" in summary.email
    assert "and 5 more" in summary.email
    assert len(summary.subject) <= 100
    # SNS message attributes must be non-empty strings
    assert all(isinstance(v, str) and v for v in summary.attributes.values())
