"""Plays CloudTrail: the management event S3 would have logged for a call (moto emits none)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from functions.drift_monitor.domain.models import BucketKind, BucketRef


def actor_in(account: str) -> str:
    """The person the demo's changes are made by, signed in to ``account``."""
    return f"arn:aws:sts::{account}:assumed-role/PlatformAdmin/alice"


DEMO_ACTOR = actor_in("123456789012")
DEMO_SOURCE_IP = "203.0.113.24"


def s3_call_detail(
    event_name: str,
    bucket: str,
    *,
    account: str,
    region: str,
    request_parameters: dict[str, Any] | None = None,
    actor_arn: str = DEMO_ACTOR,
    source_ip: str = DEMO_SOURCE_IP,
    error_code: str | None = None,
    kind: BucketKind = BucketKind.GENERAL_PURPOSE,
    event_time: datetime | None = None,
) -> dict[str, Any]:
    """The ``detail`` of an "AWS API Call via CloudTrail" event, shaped like CloudTrail 1.10.
    Directory buckets' calls are logged by s3express.amazonaws.com against its control endpoint,
    table buckets' by s3tables.amazonaws.com, which names the bucket by its ARN."""
    now = (event_time or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ref = BucketRef(bucket, account, region, kind)
    identity = _assumed_role(actor_arn, account)
    identity["sessionContext"] = {"attributes": {"creationDate": now, "mfaAuthenticated": "true"}}
    source, host, parameters, resource_type = {
        BucketKind.GENERAL_PURPOSE: (
            "s3.amazonaws.com",
            f"{bucket}.s3.{region}.amazonaws.com",
            {"bucketName": bucket},
            "AWS::S3::Bucket",
        ),
        BucketKind.DIRECTORY: (
            "s3express.amazonaws.com",
            f"s3express-control.{region}.amazonaws.com",
            {"bucketName": bucket},
            "AWS::S3Express::DirectoryBucket",
        ),
        BucketKind.TABLE: (
            "s3tables.amazonaws.com",
            f"s3tables.{region}.amazonaws.com",
            {"tableBucketARN": ref.arn},
            "AWS::S3Tables::TableBucket",
        ),
        # S3 Vectors' calls name the bucket as the caller did (name or ARN); the resource type
        # name is not documented: the CloudFormation type is used.
        BucketKind.VECTOR: (
            "s3vectors.amazonaws.com",
            f"s3vectors.{region}.api.aws",
            {"vectorBucketName": bucket},
            "AWS::S3Vectors::VectorBucket",
        ),
    }[kind]
    detail: dict[str, Any] = {
        "eventVersion": "1.10",
        "userIdentity": identity,
        "eventTime": now,
        "eventSource": source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": "[aws-cli/2.27.0 md/awscrt#0.26.1 ua/2.1 os/linux]",
        "requestParameters": {**parameters, "Host": host, **(request_parameters or {})},
        "responseElements": None,
        "additionalEventData": {
            "SignatureVersion": "SigV4",
            "CipherSuite": "TLS_AES_128_GCM_SHA256",
            "bytesTransferredIn": 0,
            "AuthenticationMethod": "AuthHeader",
            "bytesTransferredOut": 0,
        },
        "requestID": uuid.uuid4().hex[:16].upper(),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "resources": [{"accountId": account, "type": resource_type, "ARN": ref.arn}],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": host,
        },
    }
    if error_code:
        detail["errorCode"] = error_code
        detail["errorMessage"] = "Access Denied"
    return detail


def kms_call_detail(
    event_name: str,
    key_arn: str,
    *,
    actor_arn: str = DEMO_ACTOR,
    request_parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``detail`` of a KMS call's CloudTrail event, shaped like the KMS Developer Guide's
    DisableKey and EnableKey examples: the key id as the caller gave it, the key ARN in
    ``responseElements.keyId`` (since December 2022) and in ``resources``."""
    _, _, _, region, account, resource = key_arn.split(":", 5)
    key_id = resource.removeprefix("key/")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "eventVersion": "1.10",
        "userIdentity": _assumed_role(actor_arn, account),
        "eventTime": now,
        "eventSource": "kms.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": DEMO_SOURCE_IP,
        "userAgent": "[aws-cli/2.27.0 md/awscrt#0.26.1 ua/2.1 os/linux]",
        "requestParameters": {"keyId": key_id, **(request_parameters or {})},
        "responseElements": {"keyId": key_arn},
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "resources": [{"accountId": account, "type": "AWS::KMS::Key", "ARN": key_arn}],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }


def _assumed_role(actor_arn: str, account: str) -> dict[str, Any]:
    """CloudTrail's userIdentity of a call made with an assumed role's credentials."""
    return {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLEROLEID:alice",
        "arn": actor_arn,
        "accountId": account,
        "accessKeyId": "ASIAEXAMPLEKEYID",
    }


class RecordedS3:
    """S3 calls made on the emulator, each followed by the CloudTrail event AWS would emit.

    ``publish`` receives each event's ``detail``; the local pipeline puts it on the default bus.
    """

    def __init__(
        self,
        s3: Any,
        publish: Any,
        account: str,
        region: str,
        tables: Any = None,
        *,
        vectors: Any = None,
    ) -> None:
        self._s3 = s3
        self._tables = tables  # S3 Tables, for table buckets
        self._vectors = vectors  # S3 Vectors, for vector buckets
        self._publish = publish
        self.account = account
        self.region = region
        # When the calls happen, as CloudTrail logs them (default: now).
        self.event_time: datetime | None = None

    def _record(self, event_name: str, bucket: str, **extra: Any) -> None:
        self._publish(
            s3_call_detail(
                event_name,
                bucket,
                account=self.account,
                region=self.region,
                actor_arn=actor_in(self.account),
                event_time=self.event_time,
                **extra,
            )
        )

    # -- directory buckets (S3 Express One Zone) --------------------------------------------------

    def create_directory_bucket(self, bucket: str) -> None:
        """``bucket`` is ``base--zone--x-s3``; it is created in that zone."""
        zone = bucket.removesuffix("--x-s3").rsplit("--", 1)[1]
        configuration = {
            "Location": {"Type": "AvailabilityZone", "Name": zone},
            "Bucket": {"Type": "Directory", "DataRedundancy": "SingleAvailabilityZone"},
        }
        self._s3.create_bucket(Bucket=bucket, CreateBucketConfiguration=configuration)
        self._record(
            "CreateBucket",
            bucket,
            kind=BucketKind.DIRECTORY,
            request_parameters={"CreateBucketConfiguration": configuration},
        )

    def put_directory_encryption(self, bucket: str, algorithm: str, key: str | None = None) -> None:
        by_default = {"SSEAlgorithm": algorithm, **({"KMSMasterKeyID": key} if key else {})}
        rule = {"ApplyServerSideEncryptionByDefault": by_default, "BucketKeyEnabled": True}
        self._s3.put_bucket_encryption(
            Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]}
        )
        self._record(
            "PutBucketEncryption",
            bucket,
            kind=BucketKind.DIRECTORY,
            request_parameters={
                "encryption": "",
                "ServerSideEncryptionConfiguration": {"Rule": rule},
            },
        )

    # -- vector buckets (S3 Vectors) -------------------------------------------------------------

    def create_vector_bucket(
        self, bucket: str, algorithm: str | None = None, key: str | None = None
    ) -> None:
        request: dict[str, Any] = {"vectorBucketName": bucket}
        if algorithm:
            request["encryptionConfiguration"] = _vector_encryption(algorithm, key)
        self._vectors.create_vector_bucket(**request)
        self._record("CreateVectorBucket", bucket, kind=BucketKind.VECTOR, request_parameters={
            k: v for k, v in request.items() if k != "vectorBucketName"})  # fmt: skip

    def create_index(
        self, bucket: str, index: str, algorithm: str | None = None, key: str | None = None
    ) -> None:
        request: dict[str, Any] = {
            "vectorBucketName": bucket,
            "indexName": index,
            "dataType": "float32",
            "dimension": 4,
            "distanceMetric": "cosine",
        }
        if algorithm:
            request["encryptionConfiguration"] = _vector_encryption(algorithm, key)
        self._vectors.create_index(**request)
        self._record("CreateIndex", bucket, kind=BucketKind.VECTOR, request_parameters={
            k: v for k, v in request.items() if k != "vectorBucketName"})  # fmt: skip

    def delete_index(self, bucket: str, index: str) -> None:
        self._vectors.delete_index(vectorBucketName=bucket, indexName=index)
        self._record(
            "DeleteIndex", bucket, kind=BucketKind.VECTOR, request_parameters={"indexName": index}
        )

    # -- table buckets (S3 Tables) ---------------------------------------------------------------

    def create_table_bucket(
        self, bucket: str, algorithm: str | None = None, key: str | None = None
    ) -> str:
        request: dict[str, Any] = {"name": bucket}
        if algorithm:
            request["encryptionConfiguration"] = _table_encryption(algorithm, key)
        arn = str(self._tables.create_table_bucket(**request)["arn"])
        detail = s3_call_detail(
            "CreateTableBucket",
            bucket,
            account=self.account,
            region=self.region,
            actor_arn=actor_in(self.account),
            kind=BucketKind.TABLE,
        )
        # CreateTableBucket names the bucket, not its ARN: that comes back in the response.
        detail["requestParameters"] = {
            "name": bucket,
            "Host": detail["tlsDetails"]["clientProvidedHostHeader"],
        }
        detail["responseElements"] = {"arn": arn}
        self._publish(detail)
        return arn

    def put_table_encryption(self, bucket: str, algorithm: str, key: str | None = None) -> None:
        arn = BucketRef(bucket, self.account, self.region, BucketKind.TABLE).arn
        configuration = _table_encryption(algorithm, key)
        self._tables.put_table_bucket_encryption(
            tableBucketARN=arn, encryptionConfiguration=configuration
        )
        self._record(
            "PutTableBucketEncryption",
            bucket,
            kind=BucketKind.TABLE,
            request_parameters={"encryptionConfiguration": configuration},
        )

    def delete_table_bucket(self, bucket: str) -> None:
        arn = BucketRef(bucket, self.account, self.region, BucketKind.TABLE).arn
        self._tables.delete_table_bucket(tableBucketARN=arn)
        self._record("DeleteTableBucket", bucket, kind=BucketKind.TABLE)

    # -- general purpose buckets -----------------------------------------------------------------

    def create_bucket(
        self, bucket: str, tags: dict[str, str] | None = None, *, record: bool = True
    ) -> None:
        location: dict[str, Any] = {}
        if self.region != "us-east-1":  # S3 refuses us-east-1 as a location constraint
            location = {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
        self._s3.create_bucket(Bucket=bucket, **location)
        if tags:
            self._s3.put_bucket_tagging(
                Bucket=bucket,
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]},
            )
        if record:
            self._record("CreateBucket", bucket)

    def put_encryption(
        self,
        bucket: str,
        algorithm: str,
        key: str | None = None,
        *,
        bucket_key: bool = False,
        sse_c_blocked: bool = True,
    ) -> None:
        """``sse_c_blocked``: the rule keeps SSE-C blocked, as S3 sets new buckets up since
        April 2026 (whether a PutBucketEncryption that leaves it out keeps the block is not
        documented, so the demo's callers say it)."""
        by_default = {"SSEAlgorithm": algorithm}
        if key:
            by_default["KMSMasterKeyID"] = key
        rule: dict[str, Any] = {
            "ApplyServerSideEncryptionByDefault": by_default,
            "BucketKeyEnabled": bucket_key,
        }
        if sse_c_blocked:
            rule["BlockedEncryptionTypes"] = {"EncryptionType": ["SSE-C"]}
        self.put_encryption_configuration(bucket, {"Rules": [rule]})

    def put_encryption_configuration(self, bucket: str, configuration: dict[str, Any]) -> None:
        """``PutBucketEncryption`` with the request's own configuration (one rule)."""
        self._s3.put_bucket_encryption(
            Bucket=bucket, ServerSideEncryptionConfiguration=configuration
        )
        (rule,) = configuration["Rules"]
        self._record(
            "PutBucketEncryption",
            bucket,
            request_parameters={
                "encryption": "",
                "ServerSideEncryptionConfiguration": {
                    "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/",
                    "Rule": rule,
                },
            },
        )

    def delete_encryption(self, bucket: str) -> None:
        self._s3.delete_bucket_encryption(Bucket=bucket)
        self._record("DeleteBucketEncryption", bucket, request_parameters={"encryption": ""})

    def denied_put_encryption(self, bucket: str) -> None:
        """A PutBucketEncryption that S3 refused: CloudTrail logs it with an errorCode."""
        self._record("PutBucketEncryption", bucket, error_code="AccessDenied")

    def delete_bucket(self, bucket: str) -> None:
        self._s3.delete_bucket(Bucket=bucket)
        self._record("DeleteBucket", bucket)

    def put_tags(self, bucket: str, tags: dict[str, str]) -> None:
        tag_set = [{"Key": k, "Value": v} for k, v in tags.items()]
        self._s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set})
        self._record(
            "PutBucketTagging",
            bucket,
            request_parameters={
                "tagging": "",
                "Tagging": {
                    "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/",
                    "TagSet": {"Tag": tag_set},
                },
            },
        )

    def delete_tags(self, bucket: str) -> None:
        self._s3.delete_bucket_tagging(Bucket=bucket)
        self._record("DeleteBucketTagging", bucket, request_parameters={"tagging": ""})

    def untag_resource(self, bucket: str, keys: list[str]) -> None:
        """S3 Control's UntagResource on the bucket's ARN (done here through the bucket's tag
        set: the same tags, another API). Its CloudTrail requestParameters follow the call's
        members (resourceArn, tagKeys): no recorded event was available to copy."""
        tags = self._s3.get_bucket_tagging(Bucket=bucket).get("TagSet", [])
        kept = [tag for tag in tags if tag["Key"] not in keys]
        if kept:
            self._s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": kept})
        else:
            self._s3.delete_bucket_tagging(Bucket=bucket)
        arn = BucketRef(bucket, self.account, self.region).arn
        self._record(
            "UntagResource",
            bucket,
            request_parameters={"resourceArn": arn, "tagKeys": keys},
        )


def _vector_encryption(algorithm: str, key: str | None) -> dict[str, str]:
    return {"sseType": algorithm, **({"kmsKeyArn": key} if key else {})}


def _table_encryption(algorithm: str, key: str | None) -> dict[str, str]:
    return {"sseAlgorithm": algorithm, **({"kmsKeyArn": key} if key else {})}
