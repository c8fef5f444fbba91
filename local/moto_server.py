"""``moto_server`` with the gaps to real AWS closed that the monitor's tests would fall into.

- moto 5.2.5 truncates ListBuckets at MaxBuckets without a ContinuationToken (a paginating client
  would silently miss buckets) and omits BucketRegion (a client would make one GetBucketLocation
  per bucket that real S3 does not need). Here it answers as S3 does: name order, pages, regions
  (S3 API Reference, ListBuckets: MaxBuckets, ContinuationToken, Buckets[].BucketRegion).
- When moto enforces IAM (``INITIAL_NO_AUTH_ACTION_COUNT``), it authorizes Get/Put/
  DeleteBucketEncryption as s3:ListBucket / s3:CreateBucket / s3:DeleteBucket. Here they need
  s3:GetEncryptionConfiguration and s3:PutEncryptionConfiguration, as on AWS (S3 API Reference,
  GetBucketEncryption and PutBucketEncryption, "Permissions").
- moto lets anyone assume any role, even one that does not exist. Here STS checks that the role
  exists in its account and that its trust policy allows the caller (``local/sts_trust.py``).
  With IAM enforced, moto also checks trust itself, for roles of the caller's own account, in a
  way that fails any role with more than one trust statement (a statement that does not name the
  caller denies, one naming only a service crashes with HTTP 500); that check is the same one here.
- With IAM enforced, moto asks for sqs:SendMessageBatch (and the other batch actions) and for
  dynamodb:TransactWriteItems, which IAM does not have: on AWS a batch needs the single action's
  permission, and a transaction each of its parts' (PutItem, UpdateItem...). Here too.
- moto 5.2.5 stores BlockedEncryptionTypes with a bucket's default encryption but leaves it out
  of GetBucketEncryption. S3: "GetBucketEncryption ... also returns BucketKeyEnabled and
  BlockedEncryptionTypes" (S3 API Reference). Here it is returned as stored.
- moto answers a DynamoDB Query through its model-driven serializer, about two milliseconds per
  item returned: a sweep's query of 500 open rows took over a second, where DynamoDB answers a
  1 MB page in one round trip. Here Query's answer, already converted by moto, is written as JSON
  directly: the same document (a test compares both), at the emulator's cost rather than its
  serializer's. Likewise moto projects an index's item (INCLUDE, KEYS_ONLY) by converting the
  whole item to plain JSON once per projected attribute; here top-level attributes are copied as
  they are stored, the same item (the same test).
- moto draws a random organization id; ``LOCAL_ORGANIZATION_ID`` fixes it, so a template
  synthesized for that organization (its bus policy, its trust conditions) matches the emulator.
- moto has no directory buckets (S3 Express One Zone) and no working table buckets (S3 Tables):
  ``local/other_buckets.py`` answers their calls in front of moto.
- moto's DynamoDB serves concurrent requests on one item without isolation: two conditional
  updates can both pass their condition, and a read can see an item half written. DynamoDB:
  "Individual write operations such as UpdateItem are atomic and always operate on the most
  recent version of the item, regardless of concurrency" (DynamoDB Developer Guide, "Best
  practices for handling concurrent updates in DynamoDB"). Here DynamoDB requests are served one
  at a time.

- moto 5.2.5 confirms email subscriptions at once. SNS: "To actually create a subscription, the
  endpoint owner must call the ConfirmSubscription action with the token from the confirmation
  message" (SNS API Reference, Subscribe); until then ListSubscriptionsByTopic names it
  ``PendingConfirmation``. Here email subscriptions stay pending (no email is sent to confirm).
- moto 5.2.5 answers GetEventSelectors of a trail created without selectors with none. CloudTrail:
  "By default, trails created without specific event selectors are configured to log all read
  and write management events" (CloudTrail API Reference, PutEventSelectors). Here that default.
- moto lists no instance of a service-managed StackSet (it deploys only to accounts it is given,
  and service-managed StackSets take organizational units). ``local/stack_sets.py`` answers
  ListStackInstances for the StackSets the local pipeline deploys, in CloudFormation's wire shape.
- moto logs no CloudTrail event. ``local/journal.py`` notes any client's S3 bucket writes for
  the local pipeline to play as CloudTrail events (``LocalPipeline.serve``).
- moto 5.2.5 routes events through disabled rules, and through rules that have only a schedule.
  EventBridge: "A disabled rule won't match any events" (API Reference, DisableRule); "Rules with
  EventPatterns are triggered when a matching event is observed. Rules with ScheduleExpressions
  self-trigger based on the given schedule" (API Reference, PutRule). Here neither sends events.

Everything else is moto as released.

Usage: python -m local.moto_server -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
from typing import Any

import moto.organizations.utils
import moto.server
from moto.cloudtrail.models import Trail
from moto.core.common_types import TYPE_RESPONSE
from moto.core.exceptions import AccessDeniedError
from moto.core.responses import ActionResult
from moto.core.utils import ensure_boolean
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.responses import DynamoHandler
from moto.events.models import Rule
from moto.iam.access_control import IAMRequestBase
from moto.iam.models import iam_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.organizations.models import organizations_backends
from moto.s3.exceptions import ServerSideEncryptionConfigurationNotFoundError
from moto.s3.responses import ACTION_MAP, S3Response
from moto.server import main as moto_main
from moto.sns.models import Subscription
from moto.sts.responses import TokenResponse

from local.journal import Journal
from local.other_buckets import OtherBuckets
from local.stack_sets import LocalStackSets
from local.sts_trust import Caller, principal_arn, trust_allows

_OWNER = {"ID": "bcaf1ffd86f41161ca5fb16fd081034f", "DisplayName": "webfile"}


def list_buckets_like_s3(self: Any) -> TYPE_RESPONSE:
    self.data["Action"] = "ListAllMyBuckets"
    self._authenticate_and_authorize_s3_action()
    prefix = self._get_param("prefix")
    token = self._get_param("continuation-token")
    page_size = int(self._get_param("max-buckets") or 0)
    buckets = sorted(
        self.backend.list_buckets(
            prefix=prefix, bucket_region=self._get_param("bucket-region"), max_buckets=None
        ),
        key=lambda bucket: bucket.name,
    )
    if token:
        buckets = [bucket for bucket in buckets if bucket.name > token]
    page = buckets[:page_size] if page_size else buckets
    result: dict[str, Any] = {
        "Owner": _OWNER,
        "Buckets": [
            {
                "Name": bucket.name,
                "CreationDate": bucket.creation_date_ISO8601,
                "BucketRegion": bucket.region_name,
            }
            for bucket in page
        ],
    }
    if len(page) < len(buckets):
        result["ContinuationToken"] = page[-1].name
    if prefix:
        result["Prefix"] = prefix
    self.data["Action"] = "ListBuckets"
    return self.serialized(ActionResult(result))  # type: ignore[no-any-return]


def get_bucket_encryption_like_s3(self: Any) -> TYPE_RESPONSE:
    self.data["Action"] = "GetBucketEncryption"
    encryption = self.backend.get_bucket_encryption(self.bucket_name)
    if not encryption:
        raise ServerSideEncryptionConfigurationNotFoundError(bucket_name=self.bucket_name)
    rule = encryption["Rule"]
    result: dict[str, Any] = {
        "ApplyServerSideEncryptionByDefault": rule["ApplyServerSideEncryptionByDefault"],
        "BucketKeyEnabled": ensure_boolean(rule.get("BucketKeyEnabled")),
    }
    blocked = rule.get("BlockedEncryptionTypes")
    if blocked is not None:
        # The XML body as moto parsed it: one EncryptionType is a string, several a list.
        types = (blocked or {}).get("EncryptionType") or []
        result["BlockedEncryptionTypes"] = {
            "EncryptionType": [types] if isinstance(types, str) else list(types)
        }
    return self.serialized(  # type: ignore[no-any-return]
        ActionResult({"ServerSideEncryptionConfiguration": {"Rules": [result]}})
    )


_query = DynamoHandler.query


def query_serialized_once(self: Any) -> str:
    answer = _query(self)
    return json.dumps(answer.result, default=_binary)


_project = Item.project


def project_top_level_attributes(self: Item, projection_expressions: list[list[str]]) -> Item:
    if any(len(path) != 1 for path in projection_expressions):
        return _project(self, projection_expressions)  # nested paths: moto's own way
    names = dict.fromkeys(path[0] for path in projection_expressions)
    return Item(
        hash_key=self.hash_key,
        range_key=self.range_key,
        attrs={name: self.attrs[name].to_json() for name in names if name in self.attrs},
    )


def _binary(value: object) -> str:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()  # the JSON protocol's blobs
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def authorize_encryption_like_s3() -> None:
    bucket_actions = ACTION_MAP["BUCKET"]
    bucket_actions["GET"]["encryption"] = "GetEncryptionConfiguration"
    bucket_actions["PUT"]["encryption"] = "PutEncryptionConfiguration"
    bucket_actions["DELETE"]["encryption"] = "PutEncryptionConfiguration"


_assume_role = TokenResponse.assume_role


def assume_role_like_sts(self: Any) -> ActionResult:
    role_arn = str(self._get_param("RoleArn"))
    _, caller_arn, caller_account = self.backend.get_caller_identity(
        self.get_access_key(), self.region
    )
    caller = Caller(
        arn=principal_arn(caller_arn, caller_account),
        account=caller_account,
        organization_id=_organization_of(caller_account),
    )
    parts = role_arn.split(":")
    partition, account, name = parts[1], parts[4], role_arn.rsplit("/", 1)[-1]
    role = next(
        (
            candidate
            for candidate in iam_backends[account][partition].roles.values()
            if candidate.name == name
        ),
        None,
    )
    if role is None or not trust_allows(role.assume_role_policy_document, caller):
        raise AccessDeniedError(caller_arn, f"sts:AssumeRole on resource: {role_arn}")
    return _assume_role(self)


def _organization_of(account: str) -> str | None:
    management, partition = organizations_backends.master_accounts.get(account, (account, "aws"))
    organization = organizations_backends[management][partition].org
    return None if organization is None else str(organization.id)


# SQS's batch calls are authorized by the permission of the single call (no such IAM actions).
_SINGLE_ACTION = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
_check_action_permitted = IAMRequestBase.check_action_permitted


# A transaction's parts, and the permission each needs.
_TRANSACTION_PARTS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


def check_action_like_iam(self: Any, resource: str) -> None:
    if self._action == "dynamodb:TransactWriteItems":
        for part in json.loads(self._body or b"{}").get("TransactItems", []):
            ((kind, operation),) = part.items()
            self._action = _TRANSACTION_PARTS[kind]
            table = (
                f"arn:aws:dynamodb:{self._region}:{self.account_id}:table/{operation['TableName']}"
            )
            _check_action_permitted(self, table)
        return
    self._action = _SINGLE_ACTION.get(self._action, self._action)
    _check_action_permitted(self, resource)


def check_trust_like_sts(self: Any, role_arn: str) -> bool:
    """moto's own trust check under IAM enforcement, made the same as ``assume_role_like_sts``."""
    role = self.backend.get_role_by_arn(role_arn)
    caller = Caller(
        arn=principal_arn(self._access_key.arn, self.account_id),
        account=self.account_id,
        organization_id=_organization_of(self.account_id),
    )
    return trust_allows(role.assume_role_policy_document, caller)


_OTHER_BUCKETS = OtherBuckets()
_STACK_SETS = LocalStackSets()
_JOURNAL = Journal()


_DYNAMODB_TARGET = "DynamoDB_20120810."
_DYNAMODB_ONE_AT_A_TIME = threading.Lock()


# Email subscriptions wait for a confirmation nobody sends here.
_UNCONFIRMED = ("email", "email-json")
# What a trail logs when nobody chose (CloudTrail API Reference, PutEventSelectors).
DEFAULT_EVENT_SELECTORS = [
    {
        "ReadWriteType": "All",
        "IncludeManagementEvents": True,
        "DataResources": [],
        "ExcludeManagementEventSources": [],
    }
]


def subscription_arn_like_sns(self: Subscription) -> str:
    if self.protocol in _UNCONFIRMED and not self.confirmed:
        return "PendingConfirmation"
    return str(self.arn)


def event_selectors_like_cloudtrail(self: Trail) -> tuple[list[Any], list[Any]]:
    if not self.event_selectors and not self.advanced_event_selectors:
        return [dict(selector) for selector in DEFAULT_EVENT_SELECTORS], []
    return self.event_selectors, self.advanced_event_selectors


_MOTO_SEND_TO_TARGETS = Rule.send_to_targets


def send_only_if_enabled(self: Rule, original_event: Any, transform_input: bool = True) -> None:
    if self.state != "ENABLED":
        return
    if self.scheduled_expression and not self.event_pattern.get_pattern():
        return  # "Rules with ScheduleExpressions self-trigger based on the given schedule"
    _MOTO_SEND_TO_TARGETS(self, original_event, transform_input)


class WithOtherBuckets(DomainDispatcherApplication):
    """moto's application, with directory and table buckets answered before it, and DynamoDB's
    requests isolated from each other."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith(_DYNAMODB_TARGET):
            with _DYNAMODB_ONE_AT_A_TIME:
                # The whole body is produced under the lock: moto builds it from live items.
                return list(super().__call__(environ, start_response))
        app = _JOURNAL.wrap(_STACK_SETS.wrap(_OTHER_BUCKETS.wrap(super().__call__)))
        return app(environ, start_response)


def organization_id_from_environment() -> None:
    chosen = os.environ.get("LOCAL_ORGANIZATION_ID")
    if chosen:
        moto.organizations.utils.make_random_org_id = lambda: chosen


if __name__ == "__main__":
    S3Response.all_buckets = list_buckets_like_s3  # type: ignore[method-assign]
    S3Response.get_bucket_encryption = get_bucket_encryption_like_s3  # type: ignore[method-assign]
    DynamoHandler.query = query_serialized_once  # type: ignore[method-assign,assignment]
    Item.project = project_top_level_attributes  # type: ignore[method-assign]
    Rule.send_to_targets = send_only_if_enabled  # type: ignore[method-assign]
    Subscription.SubscriptionArn = property(subscription_arn_like_sns)  # type: ignore[attr-defined]
    Trail.get_event_selectors = event_selectors_like_cloudtrail  # type: ignore[method-assign]
    authorize_encryption_like_s3()
    TokenResponse.assume_role = assume_role_like_sts  # type: ignore[method-assign]
    IAMRequestBase._check_role_trust_relationship = check_trust_like_sts  # type: ignore[method-assign]
    IAMRequestBase.check_action_permitted = check_action_like_iam  # type: ignore[method-assign]
    organization_id_from_environment()
    moto.server.DomainDispatcherApplication = WithOtherBuckets  # type: ignore[attr-defined]
    moto_main(sys.argv[1:])
