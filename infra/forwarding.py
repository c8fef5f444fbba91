"""The S3 events the monitor watches, and the rule that forwards them from where they happen.

S3 delivers a bucket's CloudTrail events to EventBridge in the bucket's own account and region.
A forwarder in every other watched region (and, in the organization topology, in every member
account) sends the matching events, and only those, to the monitor's bus.
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from constructs import Construct

from functions.drift_monitor.domain.events import KEY_EVENTS, KEY_SOURCE

CREATE_BUCKET = "CreateBucket"  # general purpose and directory buckets alike
CREATE_TABLE_BUCKET = "CreateTableBucket"
# What the new-bucket grace period holds back.
CREATIONS = (CREATE_BUCKET, CREATE_TABLE_BUCKET)
MONITORED_EVENTS = (CREATE_BUCKET, "PutBucketEncryption", "DeleteBucketEncryption")
# §11: a deletion resolves an open drift; tag changes can add or remove an exemption.
DELETE_BUCKET = "DeleteBucket"
# Tags change through S3's bucket calls, and through S3 Control's tagging calls on a bucket ARN
# (general purpose and directory buckets: s3control model, TagResource/UntagResource).
TAGGING_EVENTS = ("PutBucketTagging", "DeleteBucketTagging", "TagResource", "UntagResource")
# §12: table buckets (S3 Tables) have calls of their own; directory buckets (S3 Express One
# Zone) use S3's names, logged by their own event source.
TABLE_BUCKET_EVENTS = (
    CREATE_TABLE_BUCKET,
    "PutTableBucketEncryption",
    "DeleteTableBucketEncryption",
    "DeleteTableBucket",
)
# §15: vector buckets (S3 Vectors) take their encryption at creation, the bucket's and each
# index's: creations are judged, deletions resolve (CloudTrail eventSource s3vectors.amazonaws.com,
# S3 User Guide, "Logging with AWS CloudTrail for S3 Vectors").
VECTOR_BUCKET_EVENTS = ("CreateVectorBucket", "CreateIndex", "DeleteIndex", "DeleteVectorBucket")
# The CloudTrail eventSource of every kind of bucket, matched exactly.
EVENT_SOURCES = (
    "s3.amazonaws.com",
    "s3express.amazonaws.com",
    "s3tables.amazonaws.com",
    "s3vectors.amazonaws.com",
)
# EventBridge's source for them, matched by prefix: aws.s3 and aws.s3express are documented
# (EventBridge Events Reference), S3 Tables' spelling is not. Only AWS services may put events
# whose source begins with "aws." (custom PutEvents cannot), so the prefix still means AWS.
SOURCE_PREFIX = "aws.s3"
KMS_SOURCE = "aws.kms"


def monitored_events(*, exempt_tag: bool, key_checks: bool = False) -> tuple[str, ...]:
    """Every call that can change a bucket's verdict under the policy, of every kind of bucket
    (and with ``keyChecks`` every KMS call that changes whether S3 can use a key, §15)."""
    return (
        *MONITORED_EVENTS,
        DELETE_BUCKET,
        *TABLE_BUCKET_EVENTS,
        *VECTOR_BUCKET_EVENTS,
        *(TAGGING_EVENTS if exempt_tag else ()),
        *(KEY_EVENTS if key_checks else ()),
    )


def s3_change_pattern(event_names: tuple[str, ...] | list[str]) -> events.EventPattern:
    """SPEC §3, §11, §12 and §15: the named calls on any kind of bucket (and on KMS keys when
    key events are named), successful ones only. One list of names for every source: no name of
    one service means something else in another."""
    sources = list(EVENT_SOURCES)
    source = events.Match.prefix(SOURCE_PREFIX)
    if set(event_names) & set(KEY_EVENTS):
        # KMS's CloudTrail events reach EventBridge with source aws.kms (EventBridge Events
        # Reference; KMS Developer Guide, "Monitoring with Amazon EventBridge").
        sources.append(KEY_SOURCE)
        source = events.Match.any_of(source, events.Match.exact_string(KMS_SOURCE))
    return events.EventPattern(
        source=source,
        detail_type=["AWS API Call via CloudTrail"],
        detail={
            "eventSource": sources,
            "eventName": list(event_names),
            "errorCode": [{"exists": False}],
        },
    )


def default_bus_arn(region: str) -> str:
    """This account's default event bus in ``region``."""
    return f"arn:{Aws.PARTITION}:events:{region}:{Aws.ACCOUNT_ID}:event-bus/default"


class EventForwarder(Construct):
    """A rule on this region's default bus sending the monitor's events to ``target_bus_arn``,
    through a role that may do nothing but put events on that one bus."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        target_bus_arn: str,
        event_names: tuple[str, ...],
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "events.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
            description="Lets the S3 encryption monitor's forwarding rule put events on its bus",
        )
        self.rule = events.Rule(
            self,
            "Rule",
            description="Forwards S3 bucket (general purpose, directory, table, vector) "
            "creations, deletions and default-encryption (and exemption tag) changes, and with "
            "keyChecks KMS key changes, successful calls only, to the S3 encryption drift monitor",
            event_pattern=s3_change_pattern(event_names),
        )
        # The target grants the role events:PutEvents on that bus, and nothing else. EventBridge
        # retries a bus target for 24 hours by itself; what still fails is caught by the next
        # sweep, which reads every bucket's state.
        self.rule.add_target(
            targets.EventBus(
                events.EventBus.from_event_bus_arn(self, "MonitorBus", target_bus_arn),
                role=self.role,
            )
        )
