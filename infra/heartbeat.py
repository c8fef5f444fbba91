"""The heartbeat's source in one account and region (§14): a bucket of the monitor's own whose
default encryption an EventBridge Scheduler schedule puts again at every interval.

The call is a real ``PutBucketEncryption``: its CloudTrail event takes the same path as any
bucket's (trail, default bus, rule, forwarder, central bus, function), so its arrival proves the
path. The schedule uses a universal target (``arn:aws:scheduler:::aws-sdk:s3:putBucketEncryption``,
EventBridge Scheduler User Guide, "Using universal targets"), whose ``Input`` is the API's own
request members, through a role that may make only that write, on only that bucket.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Aws, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from functions.drift_monitor.domain.heartbeat import HEARTBEAT_PREFIX
from functions.drift_monitor.domain.permissions import PUT_ENCRYPTION

# What every beat puts: SSE-S3, SSE-C blocked (as S3 sets new buckets up since April 2026).
HEARTBEAT_ENCRYPTION = {
    "Rules": [
        {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
            "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]},
        }
    ]
}


class HeartbeatSource(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, rate: str) -> None:
        super().__init__(scope, construct_id)
        # Named so the function recognizes it without reading it (domain.heartbeat).
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=f"{HEARTBEAT_PREFIX}{Aws.ACCOUNT_ID}-{Aws.REGION}",
            encryption=s3.BucketEncryption.S3_MANAGED,
            blocked_encryption_types=[s3.BlockedEncryptionType.SSE_C],
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # It never holds an object: nothing is lost with the stack, and a redeploy may
            # create it again under the same name.
            removal_policy=RemovalPolicy.DESTROY,
        )
        Validations.of(self.bucket).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-S1",
                reason="The heartbeat bucket never holds an object; only its default encryption "
                "is written, and CloudTrail records each write.",
            )
        )
        self.bucket.node.default_child.add_metadata(  # type: ignore[union-attr]
            "checkov",
            {
                "skip": [
                    {"id": "CKV_AWS_18", "comment": "Never holds an object: nothing to log."},
                    {"id": "CKV_AWS_21", "comment": "Never holds an object: nothing to version."},
                ]
            },
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
            description="Lets the S3 encryption monitor's heartbeat schedule put its bucket's "
            "default encryption, and nothing else",
            inline_policies={
                "PutHeartbeatEncryption": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=[PUT_ENCRYPTION], resources=[self.bucket.bucket_arn]
                        )
                    ]
                )
            },
        )
        self.schedule = scheduler.CfnSchedule(
            self,
            "Schedule",
            description="S3 Encryption Drift Monitor heartbeat: its CloudTrail event proves "
            "that this account and region's events reach the monitor",
            schedule_expression=rate,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=f"arn:{Aws.PARTITION}:scheduler:::aws-sdk:s3:putBucketEncryption",
                role_arn=self.role.role_arn,
                input=Stack.of(self).to_json_string(
                    {
                        "Bucket": self.bucket.bucket_name,
                        "ServerSideEncryptionConfiguration": HEARTBEAT_ENCRYPTION,
                    }
                ),
            ),
            state="ENABLED",
        )
