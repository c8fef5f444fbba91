"""How ``s3-encryption-monitor doctor`` finds a deployment: one SSM parameter per stack,
``/s3-encryption-drift-monitor/<stack name>``, holding what it checks as JSON (the names of the
functions, rules, queues, tables, StackSets and forwarder stacks, the regions and the policy).

One parameter, read with one call, in every topology: the doctor needs no stack outputs parsing
and no naming convention but this one and the forwarder stacks' (``<stack>-<region>``, as
``app.py`` names them).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from functions.drift_monitor.domain.discovery import MANIFEST_VERSION, parameter_name


class DeploymentManifest(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, manifest: dict[str, Any]) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.parameter = ssm.StringParameter(
            self,
            "Parameter",
            parameter_name=parameter_name(stack.stack_name),
            description="S3 Encryption Drift Monitor: what s3-encryption-monitor doctor checks",
            string_value=stack.to_json_string({"version": MANIFEST_VERSION, **manifest}),
            # Standard (4 KB, free) unless a long policy or many regions need advanced (8 KB).
            tier=ssm.ParameterTier.INTELLIGENT_TIERING,
        )
