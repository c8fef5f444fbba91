"""The deployable stack: the monitor construct and the reasons for each accepted cdk-nag finding."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Stack, Validations
from constructs import Construct, IConstruct

from .config import MonitorProps
from .monitor import EncryptionDriftMonitor


class EncryptionDriftMonitorStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, props: MonitorProps, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.monitor = EncryptionDriftMonitor(self, "Monitor", props=props)
        CfnOutput(self, "AlertTopicArn", value=self.monitor.topic.topic_arn)
        CfnOutput(self, "FailureQueueUrl", value=self.monitor.failure_queue.queue_url)
        CfnOutput(self, "FunctionName", value=self.monitor.function.function_name)
        if self.monitor.sweep_function is not None:
            CfnOutput(self, "SweepFunctionName", value=self.monitor.sweep_function.function_name)
        self._acknowledge_findings()

    def _acknowledge_findings(self) -> None:
        monitor = self.monitor
        _acknowledge(
            monitor.function.role,
            "AwsSolutions::AwsSolutions-IAM5[Resource::arn:aws:s3:::*]",
            "The monitor must read the encryption and tags of every bucket in the account, and "
            "bucket ARNs carry no account; the statement is narrowed to this account's buckets "
            "with the s3:ResourceAccount condition.",
        )
        _acknowledge(
            monitor.function.role,
            "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            "X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level "
            "permissions (added by Tracing.ACTIVE).",
        )
        if monitor.sweep_function is not None:
            _acknowledge(
                monitor.sweep_function.role,
                "AwsSolutions::AwsSolutions-IAM5[Resource::arn:aws:s3:::*]",
                "The sweep reads the encryption, location and tags of every bucket in the "
                "account, and bucket ARNs carry no account; the statement is narrowed to this "
                "account's buckets with the s3:ResourceAccount condition.",
            )
            _acknowledge(
                monitor.sweep_function.role,
                "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                "s3:ListAllMyBuckets and X-Ray's PutTraceSegments and PutTelemetryRecords "
                "support no resource-level permissions.",
            )
        for queue in (monitor.failure_queue, monitor.delivery_dead_letter_queue):
            _acknowledge(
                queue,
                "AwsSolutions::AwsSolutions-SQS3",
                "This queue is itself the dead-letter queue (failure destination) of the monitor.",
            )


def _acknowledge(scope: IConstruct | None, finding_id: str, reason: str) -> None:
    assert scope is not None
    Validations.of(scope).acknowledge(Acknowledgment(id=finding_id, reason=reason))
