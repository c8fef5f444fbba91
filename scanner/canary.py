"""``doctor --live``: a canary round trip through the deployed monitor (SPEC §14).

In the caller's account and the monitor's home region: a temporary SSE-SQS queue subscribed to
the alert topic, filtered to one temporary bucket; the bucket is given a default encryption the
policy refuses, and the DRIFT alert is awaited; then the fix (the policy's own, or deleting the
bucket when the fix needs a key the policy does not name), and the RESOLVED notice is awaited.
Everything it made is deleted whatever happens, Ctrl-C included.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from functions.drift_monitor.domain.evaluation import evaluate
from functions.drift_monitor.domain.fix import plan_fix
from functions.drift_monitor.domain.models import (
    BucketRef,
    EncryptionRule,
    ObservedEncryption,
    Status,
    Trigger,
)
from functions.drift_monitor.domain.policy import Policy

from .doctor import Check, ClientFactory, Verdict

CANARY_PREFIX = "s3-encryption-canary-"
# What a canary may provoke, in order: each is tried against the policy first. Not a rule that
# leaves out BlockedEncryptionTypes: whether S3 then keeps SSE-C blocked is not documented.
_CANDIDATES = (
    EncryptionRule("AES256", blocked_encryption_types=("SSE-C",)),
    EncryptionRule("aws:kms", None, bucket_key_enabled=False, blocked_encryption_types=("SSE-C",)),
)


def refused_rule(policy: Policy, bucket: BucketRef) -> EncryptionRule | None:
    """A default encryption a new bucket can be given that ``policy`` refuses; None if none."""
    for rule in _CANDIDATES:
        finding = evaluate(ObservedEncryption(bucket, (rule,)), policy, Trigger(source="canary"))
        if finding.status is Status.DRIFT:
            return rule
    return None


def run_canary(
    clients: ClientFactory,
    manifest: dict[str, Any],
    *,
    timeout_seconds: int,
    clock: Callable[[], float] = time.monotonic,
) -> Check:
    region = str(manifest["region"])
    policy = Policy.from_dict(manifest["policy"])
    name = f"{CANARY_PREFIX}{uuid.uuid4().hex[:12]}"
    bucket = BucketRef(name, str(manifest["account"]), region)
    if policy.is_exempt_name(name):
        return Check("canary", Verdict.SKIP, name, "the policy exempts the canary's bucket name")
    rule = refused_rule(policy, bucket)
    if rule is None:
        return Check(
            "canary",
            Verdict.SKIP,
            "-",
            "the policy refuses no configuration the canary can give a bucket (SSE-S3, SSE-KMS "
            "with the AWS managed key): there is no drift to provoke",
        )
    s3, sqs, sns = clients("s3", region), clients("sqs", region), clients("sns", region)
    made = _Made()
    try:
        inbox = made.queue(sqs, name, str(manifest["topicArn"]))
        made.subscription = sns.subscribe(
            TopicArn=manifest["topicArn"],
            Protocol="sqs",
            Endpoint=inbox["arn"],
            Attributes={"FilterPolicy": json.dumps({"bucket": [name]})},
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        made.bucket(s3, name, region)
        started = clock()
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=_request(rule))

        def failed(detail: str, fix: str) -> Check:
            return Check("canary", Verdict.FAIL, name, detail, fix)

        if not _arrived(sqs, inbox["url"], "DRIFT", timeout_seconds, clock):
            return failed(
                f"no DRIFT alert within {timeout_seconds} s of PutBucketEncryption",
                "run the doctor without --live: it names the broken piece",
            )
        to_alert = clock() - started
        fixed_at = clock()
        fix = plan_fix(
            evaluate(ObservedEncryption(bucket, (rule,)), policy, Trigger(source="canary")),
            policy,
        )
        if fix is not None and fix.complete:
            s3.put_bucket_encryption(
                Bucket=name, ServerSideEncryptionConfiguration=fix.configuration
            )
            how = "the policy's fix"
        else:  # the fix needs a key the policy does not name: a deleted bucket resolves too
            made.delete_bucket(s3)
            how = "deleting the bucket"
        if not _arrived(sqs, inbox["url"], "RESOLVED", timeout_seconds, clock):
            return failed(
                f"DRIFT alert {to_alert:.1f} s after the API call, but no RESOLVED notice "
                f"within {timeout_seconds} s of {how}",
                "check the state table and the event function's log group",
            )
        return Check(
            "canary",
            Verdict.PASS,
            name,
            f"DRIFT alert {to_alert:.1f} s after the API call; RESOLVED {clock() - fixed_at:.1f} s "
            f"after {how}",
        )
    finally:
        made.clean_up(s3, sqs, sns)


def _request(rule: EncryptionRule) -> dict[str, Any]:
    default: dict[str, Any] = {"SSEAlgorithm": rule.algorithm}
    if rule.kms_key_id:
        default["KMSMasterKeyID"] = rule.kms_key_id
    api_rule: dict[str, Any] = {
        "ApplyServerSideEncryptionByDefault": default,
        "BucketKeyEnabled": rule.bucket_key_enabled,
    }
    if rule.blocked_encryption_types:
        api_rule["BlockedEncryptionTypes"] = {"EncryptionType": list(rule.blocked_encryption_types)}
    return {"Rules": [api_rule]}


def _arrived(
    sqs: Any, url: str, status: str, timeout_seconds: int, clock: Callable[[], float]
) -> bool:
    """Whether a message of ``status`` came for the canary's bucket (the subscription filters
    it) within ``timeout_seconds``."""
    deadline = clock() + timeout_seconds
    while clock() < deadline:
        wait = max(0, min(5, int(deadline - clock())))
        for message in sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
        ).get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            document = json.loads(json.loads(message["Body"])["Message"])
            if document.get("status") == status:
                return True
    return False


class _Made:
    """What the canary created, deleted in reverse whatever happens."""

    def __init__(self) -> None:
        self.queue_url: str | None = None
        self.subscription: str | None = None
        self.bucket_name: str | None = None

    def queue(self, sqs: Any, name: str, topic_arn: str) -> dict[str, str]:
        self.queue_url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
        arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        # Encrypted (SSE-SQS) and writable by the alert topic only.
        sqs.set_queue_attributes(
            QueueUrl=self.queue_url,
            Attributes={
                "SqsManagedSseEnabled": "true",
                "Policy": json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "sns.amazonaws.com"},
                                "Action": "sqs:SendMessage",
                                "Resource": arn,
                                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
                            }
                        ],
                    }
                ),
            },
        )
        return {"url": self.queue_url, "arn": arn}

    def bucket(self, s3: Any, name: str, region: str) -> None:
        # us-east-1 takes no location constraint (S3 API Reference, CreateBucket).
        where = {} if region == "us-east-1" else {"LocationConstraint": region}
        s3.create_bucket(Bucket=name, **({"CreateBucketConfiguration": where} if where else {}))
        self.bucket_name = name

    def delete_bucket(self, s3: Any) -> None:
        if self.bucket_name is not None:
            s3.delete_bucket(Bucket=self.bucket_name)
            self.bucket_name = None

    def clean_up(self, s3: Any, sqs: Any, sns: Any) -> None:
        steps: list[Callable[[], object]] = [lambda: self.delete_bucket(s3)]
        if self.subscription:
            steps.append(lambda: sns.unsubscribe(SubscriptionArn=self.subscription))
        if self.queue_url:
            steps.append(lambda: sqs.delete_queue(QueueUrl=self.queue_url))
        for step in steps:
            try:
                step()
            except ClientError:
                continue  # the rest is still cleaned up; a leftover is named by its prefix
