"""How every function of the monitor is built: one asset and runtime, its own role and logs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import (
    Acknowledgment,
    Annotations,
    AssetHashType,
    Aws,
    Duration,
    RemovalPolicy,
    Validations,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from functions.drift_monitor.domain.permissions import (
    DESCRIBE_KEY,
    DIRECTORY_KEY_USE,
    LIST_ACCOUNTS,
    OTHER_KINDS_LISTS,
    OTHER_KINDS_READS,
    OTHER_KINDS_WRITES,
)
from functions.drift_monitor.domain.policy import Policy
from functions.drift_monitor.domain.settings import METRICS_NAMESPACE, SERVICE_NAME

from .asset import RUNTIME_VERSION, function_asset

# Must equal the aws-lambda-powertools pin in pyproject.toml: the tests run against that version.
POWERTOOLS_VERSION = "3.37.0"
# Not the newest runtime (python3.14): the asset's bytecode is compiled by the runtime's own
# Python version at synth (infra/asset.py), and 3.13 is the newest one the build machines have.
RUNTIME = lambda_.Runtime.PYTHON_3_13  # the same version as infra/asset.py RUNTIME_VERSION
ARCHITECTURE = lambda_.Architecture.ARM_64
FUNCTION_CODE = Path(__file__).resolve().parent.parent / "functions"
LOG_RETENTION = logs.RetentionDays.ONE_YEAR
# Every general purpose bucket, in the deployment's partition (aws, aws-cn, aws-us-gov...).
ALL_BUCKETS = f"arn:{Aws.PARTITION}:s3:::*"
# How cdk-nag names that resource in its findings.
ALL_BUCKETS_FINDING = "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::*]"


def _asset_code() -> lambda_.Code:
    """Our code with the locked AWS SDK (``infra/asset.py``), identified by its content hash."""
    asset = function_asset()
    return lambda_.Code.from_asset(
        str(asset.path), asset_hash=asset.hash, asset_hash_type=AssetHashType.CUSTOM
    )


def powertools_layer_parameter() -> str:
    """The public SSM parameter that Powertools publishes for exactly this release."""
    runtime = RUNTIME.name  # e.g. python3.13
    return f"/aws/service/powertools/python/arm64/{runtime}/{POWERTOOLS_VERSION}"


@dataclass(frozen=True)
class FunctionSpec:
    """What differs from one of the monitor's functions to another."""

    handler: str
    description: str
    role_description: str
    memory_size: int
    timeout: Duration
    environment: dict[str, str]


class MonitoredFunction:
    """A function of the monitor, its role and its log group, created in ``scope`` under
    ``function_id`` (``<id>``, ``<id>Role``, ``<id>Logs``: the ids the first release used)."""

    def __init__(
        self,
        scope: Construct,
        function_id: str,
        spec: FunctionSpec,
        *,
        layer: lambda_.ILayerVersion,
        data_key: kms.IKey,
    ) -> None:
        self.log_group = logs.LogGroup(
            scope,
            f"{function_id}Logs",
            retention=LOG_RETENTION,
            encryption_key=data_key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.role = iam.Role(
            scope,
            f"{function_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=spec.role_description,
        )
        self.allow(
            "WriteOwnLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [self.log_group.log_group_arn],
        )
        self.function = lambda_.Function(
            scope,
            function_id,
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=spec.handler,
            code=_asset_code(),
            layers=[layer],
            role=self.role,
            memory_size=spec.memory_size,
            timeout=spec.timeout,
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            log_group=self.log_group,
            environment={
                **spec.environment,
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
        )
        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-L1",
                reason="python3.13, not the newest runtime: the asset ships bytecode compiled by "
                "the runtime's own Python version at synth (a cold start without it compiles "
                "botocore, ~2x slower), and 3.13 is the newest Python the build machines have.",
            )
        )
        if function_asset().bytecode_by is None:
            Annotations.of(self.function).add_warning_v2(
                "s3-encryption-monitor:no-bytecode",
                "No Python {}.{} found (RUNTIME_PYTHON, python{}.{} on the PATH, pyenv): the "
                "asset ships without bytecode and every cold start compiles the AWS SDK "
                "(about twice as slow).".format(*RUNTIME_VERSION, *RUNTIME_VERSION),
            )

    def allow(
        self,
        sid: str,
        actions: list[str] | tuple[str, ...],
        resources: list[str],
        conditions: dict[str, Any] | None = None,
    ) -> None:
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid=sid, actions=list(actions), resources=resources, conditions=conditions
            )
        )

    def read_buckets(self, sid: str, actions: tuple[str, ...]) -> None:
        self.role.add_to_policy(this_accounts_buckets(sid, actions))

    def read_other_kinds(self, *, lists: bool, remediates: bool, policy: Policy) -> None:
        """Directory and table buckets (§12): their reads, their listings for a sweep, and
        remediation's write (with the use of the keys it may set) only with ``apply``."""
        for statement in other_kinds_statements(lists=lists, remediates=remediates):
            self.role.add_to_policy(statement)
        keys = directory_keys_statement(policy) if remediates else None
        if keys is not None:
            self.role.add_to_policy(keys)
        acknowledge_other_kinds(self.role)

    def look_up_keys(self, policy: Policy) -> None:
        """What a reader asks about keys, only as the policy asks: ``keyChecks``, the metadata
        of this account's KMS keys in any region (a bucket names its region's key; other
        accounts' keys stay "unknown", their key policies decide); ``allowOrganizationKeys``,
        the organization's accounts (ListAccounts has no resource-level permissions)."""
        if policy.key_checks:
            self.role.add_to_policy(describe_keys_statement())
            acknowledge_key_wildcard(self.role)
        if policy.allow_organization_keys:
            self.allow("ListTheOrganizationsAccounts", [LIST_ACCOUNTS], ["*"])

    def use_key(self, sid: str, key: kms.IKey) -> None:
        """Encrypt and decrypt with ``key`` (SQS, SNS, DynamoDB and S3 use it on our behalf).
        Not ``key.grant_encrypt_decrypt``: it grants wildcard actions."""
        self.allow(sid, ["kms:GenerateDataKey", "kms:Decrypt"], [key.key_arn])


def this_accounts_buckets(sid: str, actions: tuple[str, ...]) -> iam.PolicyStatement:
    """General purpose bucket ARNs carry no account: the account condition keeps the actions to
    this account's buckets."""
    return iam.PolicyStatement(
        sid=sid,
        actions=list(actions),
        resources=[ALL_BUCKETS],
        conditions={"StringEquals": {"s3:ResourceAccount": Aws.ACCOUNT_ID}},
    )


def other_kinds_statements(*, lists: bool, remediates: bool) -> list[iam.PolicyStatement]:
    """Directory and table bucket ARNs name the account: this account's, in any region."""
    buckets = [
        f"arn:{Aws.PARTITION}:s3express:*:{Aws.ACCOUNT_ID}:bucket/*",
        f"arn:{Aws.PARTITION}:s3tables:*:{Aws.ACCOUNT_ID}:bucket/*",
        # §15: vector buckets and their indexes (arn:...:bucket/NAME/index/INDEX).
        f"arn:{Aws.PARTITION}:s3vectors:*:{Aws.ACCOUNT_ID}:bucket/*",
    ]
    statements = [
        iam.PolicyStatement(
            sid="ReadDirectoryAndTableBuckets", actions=list(OTHER_KINDS_READS), resources=buckets
        )
    ]
    if lists:
        # Neither listing supports resource-level permissions.
        statements.append(
            iam.PolicyStatement(
                sid="ListDirectoryAndTableBuckets",
                actions=list(OTHER_KINDS_LISTS),
                resources=["*"],
            )
        )
    if remediates:
        statements.append(
            iam.PolicyStatement(
                sid="RemediateDirectoryAndTableBuckets",
                actions=list(OTHER_KINDS_WRITES),
                # A vector bucket's encryption cannot be changed: nothing to write there.
                resources=buckets[:2],
            )
        )
    return statements


def directory_keys_statement(policy: Policy) -> iam.PolicyStatement | None:
    """Remediation of a directory bucket to SSE-KMS uses the key it sets: the key ARNs the policy
    allows (a directory bucket takes no alias); None when it lists none (no key to set)."""
    keys = [key for key in policy.allowed_kms_keys if ":key/" in key]
    if not keys:
        return None
    return iam.PolicyStatement(
        sid="SetDirectoryBucketsToTheAllowedKeys", actions=list(DIRECTORY_KEY_USE), resources=keys
    )


def acknowledge_other_kinds(role: iam.IRole) -> None:
    for service in ("s3express", "s3tables", "s3vectors"):
        Validations.of(role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:{service}:*:"
                "<AWS::AccountId>:bucket/*]",
                reason="The monitor reads the default encryption of every directory, table and "
                "vector bucket of this account, in every watched region; the ARNs name this "
                "account.",
            )
        )


def describe_keys_statement() -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="DescribeTheKeysOfThisAccountsBuckets",
        actions=[DESCRIBE_KEY],
        resources=[f"arn:{Aws.PARTITION}:kms:*:{Aws.ACCOUNT_ID}:key/*"],
    )


def acknowledge_key_wildcard(role: iam.IRole) -> None:
    Validations.of(role).acknowledge(
        Acknowledgment(
            id="AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:*:"
            "<AWS::AccountId>:key/*]",
            reason="keyChecks: a bucket may name any key of its account, in its own region; "
            "kms:DescribeKey reads only the key's metadata, and only this account's keys.",
        )
    )


def data_key(scope: Construct, construct_id: str, description: str) -> kms.Key:
    """A rotated customer managed key that CloudWatch Logs of this account and region may use."""
    key = kms.Key(scope, construct_id, description=description, enable_key_rotation=True)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchLogsOfThisAccount",
            principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
            actions=[
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
                "kms:GenerateDataKey",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:DescribeKey",
            ],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
                    )
                }
            },
        )
    )
    return key
