"""The AWS actions each part of the monitor calls, defined once.

The CDK app builds every role from these lists (the functions' roles and the member accounts'
reader role), so a role can never drift from what the code calls.
"""

from __future__ import annotations

import re

from .models import BucketKind

# What the event function reads of a bucket (the tags only on the drift path).
EVENT_BUCKET_READS = ("s3:GetEncryptionConfiguration", "s3:GetBucketTagging")
# What a sweep reads of each bucket: the location only where the listing lacks the region.
SWEEP_BUCKET_READS = (*EVENT_BUCKET_READS, "s3:GetBucketLocation")
LIST_BUCKETS = "s3:ListAllMyBuckets"
# The Resource Groups Tagging API: a sweep finds the buckets tagged exempt a page at a time.
FIND_TAGGED_BUCKETS = "tag:GetResources"
ASSUME_ROLE = "sts:AssumeRole"
LIST_ACCOUNTS = "organizations:ListAccounts"
# Which account is the organization's management account (DELEGATED_ADMIN deployments).
DESCRIBE_ORGANIZATION = "organizations:DescribeOrganization"
# The state table (§11): the event path updates one row per evaluation; the sweep queries the
# sparse index of open rows and updates the rows that moved.
STATE_EVENT_WRITES = ("dynamodb:UpdateItem",)
STATE_SWEEP_WRITES = ("dynamodb:Query", "dynamodb:UpdateItem")
# §14: the heartbeats' rows, read from the open index by the watchdog and the digest (only with
# the heartbeat on).
HEARTBEAT_READ = "dynamodb:Query"
# keyChecks (§15): a key event finds the buckets using the key in the key index, and sends
# re-evaluations of many buckets to the key queue.
KEYS_QUERY = "dynamodb:Query"
SEND_MESSAGE = "sqs:SendMessage"
# keyChecks (§12): what a reader asks KMS about a bucket's key, granted only when it is on.
DESCRIBE_KEY = "kms:DescribeKey"
# remediation apply (§12): the one write, granted only then (in member reader roles too).
PUT_ENCRYPTION = "s3:PutEncryptionConfiguration"
# §12: directory buckets (S3 Express One Zone) and table buckets (S3 Tables), read in their
# own account like general purpose buckets (neither API allows cross-account calls).
# The action that reads, and the one that writes, a bucket's default encryption, by kind.
READ_ENCRYPTION = {
    BucketKind.GENERAL_PURPOSE: "s3:GetEncryptionConfiguration",
    BucketKind.DIRECTORY: "s3express:GetEncryptionConfiguration",
    BucketKind.TABLE: "s3tables:GetTableBucketEncryption",
    # §15: a vector bucket's encryption is part of the bucket (botocore s3vectors model).
    BucketKind.VECTOR: "s3vectors:GetVectorBucket",
}
WRITE_ENCRYPTION = {
    BucketKind.GENERAL_PURPOSE: PUT_ENCRYPTION,
    BucketKind.DIRECTORY: "s3express:PutEncryptionConfiguration",
    BucketKind.TABLE: "s3tables:PutTableBucketEncryption",
}
GET_TABLE_BUCKET = "s3tables:GetTableBucket"  # only to tell a missing bucket from its config
# A vector index may have its own encryption, set at CreateIndex: each index is read too.
VECTOR_INDEX_READS = ("s3vectors:ListIndexes", "s3vectors:GetIndex")
OTHER_KINDS_READS = (
    READ_ENCRYPTION[BucketKind.DIRECTORY],
    READ_ENCRYPTION[BucketKind.TABLE],
    GET_TABLE_BUCKET,
    READ_ENCRYPTION[BucketKind.VECTOR],
    *VECTOR_INDEX_READS,
)
LIST_DIRECTORY_BUCKETS = "s3express:ListAllMyDirectoryBuckets"
LIST_TABLE_BUCKETS = "s3tables:ListTableBuckets"
LIST_VECTOR_BUCKETS = "s3vectors:ListVectorBuckets"
OTHER_KINDS_LISTS = (LIST_DIRECTORY_BUCKETS, LIST_TABLE_BUCKETS, LIST_VECTOR_BUCKETS)
OTHER_KINDS_WRITES = (WRITE_ENCRYPTION[BucketKind.DIRECTORY], WRITE_ENCRYPTION[BucketKind.TABLE])
# "To set a directory bucket default encryption with SSE-KMS, you must also have the
# kms:GenerateDataKey and the kms:Decrypt permissions ... for the target KMS key" (S3 API
# Reference, PutBucketEncryption): remediation apply needs them on the keys it may set.
DIRECTORY_KEY_USE = ("kms:GenerateDataKey", "kms:Decrypt")
# The optional outputs, granted only when turned on.
IMPORT_FINDINGS = "securityhub:BatchImportFindings"
PUT_EVENTS = "events:PutEvents"

# The reader role in every member account: the event function's and the sweep's reads, no write.
MEMBER_READER_ACTIONS = (
    *SWEEP_BUCKET_READS,
    LIST_BUCKETS,
    FIND_TAGGED_BUCKETS,
    *OTHER_KINDS_READS,
    *OTHER_KINDS_LISTS,
)
DEFAULT_MEMBER_ROLE_NAME = "S3EncryptionMonitorReader"
ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")  # what IAM accepts as a role name
# Shows in the member account's CloudTrail as the session that read its buckets.
ROLE_SESSION_NAME = "s3-encryption-drift-monitor"
