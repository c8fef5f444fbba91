"""Directory buckets (S3 Express One Zone), table buckets (S3 Tables) and vector buckets (S3
Vectors) for the local emulator.

moto 5.2.5 refuses to create a directory bucket (IllegalLocationConstraint), has no
ListDirectoryBuckets, and its S3 Tables backend answers HTTP 500 in server mode and has no
encryption calls. This WSGI layer, in front of moto's own application, answers the calls the
monitor and its tests make, in S3's real wire shapes (botocore's service models: restXml for the
S3 Express control plane, rest-json for S3 Tables). A request is recognised by the service in its
SigV4 credential scope (``s3express`` or ``s3tables``), as AWS's own endpoints are separate hosts.

Emulated, with AWS's documented behaviour:
- directory buckets: CreateBucket (name ``base--zone--x-s3``, zone matching the configuration),
  DeleteBucket, ListDirectoryBuckets (pages), Get/Put/DeleteBucketEncryption
  (a new bucket, and one whose configuration is deleted, has SSE-S3; only AES256 and aws:kms;
  aws:kms needs a key ARN or id (no alias, no AWS managed key); Bucket Keys always on), each
  source named where it is implemented: ExpectedBucketOwner refused with 501, one customer
  managed key for the bucket's lifetime, 503 while inactive (set through
  ``POST /_local/directory-buckets/inactive``, a call of this emulator's own).
- table buckets: CreateTableBucket, ListTableBuckets (prefix, pages, type), GetTableBucket,
  DeleteTableBucket, Get/Put/DeleteTableBucketEncryption (default SSE-S3; only AES256 and
  aws:kms; aws:kms needs kmsKeyArn).
- vector buckets (S3 Vectors, rest-json, every call a POST to /<Operation>): CreateVectorBucket,
  GetVectorBucket, ListVectorBuckets (prefix, pages), DeleteVectorBucket, CreateIndex, GetIndex,
  ListIndexes, DeleteIndex. Encryption is given at creation only ("can't be changed after the
  vector bucket is created"), SSE-S3 when none is given; sseType AES256 or aws:kms, kmsKeyArn a
  key ARN and required for aws:kms; an index without its own configuration has its bucket's
  (S3 User Guide, "Data protection and encryption in S3 Vectors"; botocore s3vectors model).
  A bucket with indexes cannot be deleted (ConflictException; the exact message is unverified).
- each account's buckets are its own: the account is the one moto links the access key to (an
  assumed role's credentials act in the role's account), and with IAM enforced
  (``INITIAL_NO_AUTH_ACTION_COUNT``) each call needs its IAM action on the bucket's ARN, through
  moto's own policy evaluation.
Not emulated: zonal (data plane) calls, sessions, tags, tables and namespaces.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import AccessDeniedError
from moto.iam.access_control import IAMRequest
from moto.iam.models import get_account_id_from

from functions.drift_monitor.domain.models import BucketKind, BucketRef

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
_DIRECTORY_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*--(?P<zone>[a-z0-9-]+)--x-s3$")
_TABLE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_TABLE_PATH = re.compile(
    r"^/buckets/(?P<arn>arn:[^:]+:s3tables:[^:]+:\d{12}:bucket/[^/]+)(?P<encryption>/encryption)?$"
)
# A new directory or table bucket, and one whose configuration is deleted, uses SSE-S3 (S3 User
# Guide: "Setting and monitoring default encryption for directory buckets"; "Using SSE-KMS in
# table buckets": "SSE-S3 is the default").
_SSE_S3 = {"algorithm": "AES256", "key": None}
# S3 Tables' model: kmsKeyArn is a key ARN, never an alias.
_TABLE_KEY_ARN = re.compile(r"^arn:aws[-a-z0-9]*:kms:[-a-z0-9]*:[0-9]{12}:key/.+$")
_ALGORITHMS = ("AES256", "aws:kms")


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class _Bucket:
    name: str
    account: str
    region: str
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    encryption: dict[str, str | None] = field(default_factory=lambda: dict(_SSE_S3))
    bucket_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    lifetime_key: str | None = None  # directory buckets: the one KMS key it may ever use
    inactive: bool = False  # directory buckets: idle for 90 days

    @property
    def table_arn(self) -> str:
        return BucketRef(self.name, self.account, self.region, BucketKind.TABLE).arn


@dataclass(frozen=True)
class _Call:
    """What every request carries: who, where, and what it asks."""

    account: str
    region: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


class OtherBuckets:
    """The two stores, and the WSGI middleware that answers their calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Directory bucket names are unique in their zone (the name holds it), whoever owns them;
        # table bucket names per account and region.
        self.directory: dict[tuple[str, str], _Bucket] = {}
        self.tables: dict[tuple[str, str, str], _Bucket] = {}
        # Vector bucket names per account and region, each with its indexes' encryption.
        self.vectors: dict[tuple[str, str, str], _Bucket] = {}
        self.indexes: dict[tuple[str, str, str], dict[str, dict[str, str | None]]] = {}

    def wrap(self, app: WsgiApp) -> WsgiApp:
        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            if environ.get("PATH_INFO") == INACTIVE_PATH:
                return self._answer(environ, start_response, self._set_inactive, _json_error)
            service = _signing_service(environ)
            if service == "s3express":
                return self._answer(environ, start_response, self._express, _xml_error)
            if service == "s3tables":
                return self._answer(environ, start_response, self._tables, _json_error)
            if service == "s3vectors":
                return self._answer(environ, start_response, self._vectors, _json_error)
            return app(environ, start_response)

        return middleware

    def _answer(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        handler: Callable[[_Call], tuple[int, dict[str, str], bytes]],
        error: Callable[[_Refused], tuple[int, dict[str, str], bytes]],
    ) -> list[bytes]:
        try:
            call = _parse(environ, signed=environ.get("PATH_INFO") != INACTIVE_PATH)
            with self._lock:
                status, headers, body = handler(call)
        except _Refused as refused:
            status, headers, body = error(refused)
        start_response(
            f"{status} {_REASONS.get(status, 'OK')}",
            [*headers.items(), ("Content-Length", str(len(body))), ("x-amzn-RequestId", "local")],
        )
        return [body]

    # -- S3 Express control plane (restXml) ------------------------------------------------------

    def _express(self, call: _Call) -> tuple[int, dict[str, str], bytes]:
        name = call.path.strip("/")
        if not name:
            if call.method != "GET":
                raise _Refused(405, "MethodNotAllowed", "The specified method is not allowed")
            _authorize(call, "ListAllMyDirectoryBuckets", "*")
            return self._list_directory(call)
        key = (call.region, name)
        arn = BucketRef(name, call.account, call.region, BucketKind.DIRECTORY).arn
        if "encryption" in call.query:
            action = (
                "GetEncryptionConfiguration"
                if call.method == "GET"
                else "PutEncryptionConfiguration"
            )
            if "x-amz-expected-bucket-owner" in call.headers:
                # "For directory buckets, this header is not supported in this API operation. If
                # you specify this header, the request fails with the HTTP status code 501 Not
                # Implemented." (S3 API Reference, Get/PutBucketEncryption, ExpectedBucketOwner)
                raise _Refused(501, "NotImplemented", "ExpectedBucketOwner is not supported")
            _authorize(call, action, arn)
            bucket = self._directory_bucket(call, key)
            if call.method == "GET":
                return 200, _XML, _encryption_xml(bucket.encryption)
            if call.method == "PUT":
                encryption = _directory_encryption(call.body)
                _keep_lifetime_key(bucket, encryption)
                bucket.encryption = encryption
                return 200, {}, b""
            if call.method == "DELETE":
                bucket.encryption = dict(_SSE_S3)
                return 204, {}, b""
        if call.method == "PUT":
            _authorize(call, "CreateBucket", arn)
            return self._create_directory(call, key)
        if call.method == "DELETE":
            _authorize(call, "DeleteBucket", arn)
            self._directory_bucket(call, key)
            del self.directory[key]
            return 204, {}, b""
        raise _Refused(400, "NotImplemented", f"{call.method} {call.path} is not emulated")

    def _directory_bucket(self, call: _Call, key: tuple[str, str]) -> _Bucket:
        bucket = self.directory.get(key)
        if bucket is None:
            raise _Refused(404, "NoSuchBucket", "The specified bucket does not exist")
        # The control plane is not cross-account: another account's bucket is refused.
        if bucket.account != call.account:
            raise _Refused(403, "AccessDenied", "Access Denied")
        if bucket.inactive:
            # "If a directory bucket has no request activity for 90 days, it transitions to an
            # inactive state ... temporarily inaccessible for reads and writes", answering 503
            # (S3 User Guide, "Working with directory buckets"). The error code is not
            # documented: this one is S3's usual 503 code.
            raise _Refused(503, "ServiceUnavailable", "The bucket is inactive")
        return bucket

    def _set_inactive(self, call: _Call) -> tuple[int, dict[str, str], bytes]:
        """This emulator's own call: ``{"region", "name", "inactive"}`` marks a directory bucket
        idle for 90 days (or active again)."""
        request = _body(call)
        bucket = self.directory.get((str(request.get("region")), str(request.get("name"))))
        if bucket is None:
            raise _Refused(404, "NotFoundException", "no such directory bucket")
        bucket.inactive = bool(request.get("inactive", True))
        return 204, {}, b""

    def _create_directory(
        self, call: _Call, key: tuple[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        name = key[1]
        match = _DIRECTORY_NAME.match(name)
        if match is None or len(name) > 63:
            raise _Refused(400, "InvalidBucketName", "The specified bucket is not valid.")
        configuration = ET.fromstring(call.body) if call.body else None
        zone = _text(configuration, "Location/Name")
        kind = _text(configuration, "Bucket/Type")
        if kind != "Directory" or zone != match["zone"]:
            raise _Refused(
                400,
                "InvalidBucketName",
                "A directory bucket needs CreateBucketConfiguration with Bucket Type Directory "
                "and a Location Name equal to the zone in its name",
            )
        if key in self.directory:
            if self.directory[key].account == call.account:
                raise _Refused(409, "BucketAlreadyOwnedByYou", "Your previous request succeeded")
            raise _Refused(409, "BucketAlreadyExists", "The requested bucket name is not available")
        self.directory[key] = _Bucket(name, call.account, call.region)
        return 200, {"Location": f"/{name}"}, b""

    def _list_directory(self, call: _Call) -> tuple[int, dict[str, str], bytes]:
        buckets = sorted(
            (b for b in self.directory.values()
             if (b.account, b.region) == (call.account, call.region)),
            key=lambda bucket: bucket.name,
        )  # fmt: skip
        token = call.query.get("continuation-token")
        if token:
            buckets = [bucket for bucket in buckets if bucket.name > token]
        size = int(call.query.get("max-directory-buckets") or 1000)
        page = buckets[:size]
        root = ET.Element("ListAllMyDirectoryBucketsResult", xmlns=_S3_NAMESPACE)
        listed = ET.SubElement(root, "Buckets")
        for bucket in page:
            entry = ET.SubElement(listed, "Bucket")
            ET.SubElement(entry, "Name").text = bucket.name
            # No BucketRegion: "The BucketRegion response element is not part of the
            # ListDirectoryBuckets Response Syntax" (S3 API Reference, ListDirectoryBuckets).
            ET.SubElement(entry, "CreationDate").text = bucket.created
        if len(page) < len(buckets):
            ET.SubElement(root, "ContinuationToken").text = page[-1].name
        return 200, _XML, _xml(root)

    # -- S3 Tables (rest-json) -------------------------------------------------------------------

    def _tables(self, call: _Call) -> tuple[int, dict[str, str], bytes]:
        if call.path == "/buckets":
            if call.method == "PUT":
                return self._create_table_bucket(call)
            if call.method == "GET":
                _authorize(call, "ListTableBuckets", "*")
                return self._list_table_buckets(call)
        match = _TABLE_PATH.match(call.path)
        if match is None:
            raise _Refused(400, "BadRequestException", f"{call.method} {call.path} is not emulated")
        arn = match["arn"]
        operation = {
            ("GET", True): "GetTableBucketEncryption",
            ("PUT", True): "PutTableBucketEncryption",
            ("DELETE", True): "DeleteTableBucketEncryption",
            ("GET", False): "GetTableBucket",
            ("DELETE", False): "DeleteTableBucket",
        }.get((call.method, bool(match["encryption"])))
        if operation is None:
            raise _Refused(405, "MethodNotAllowedException", f"{call.method} is not allowed")
        _authorize(call, operation, arn)
        key = _table_key(arn, call)
        bucket = self.tables.get(key)
        if bucket is None:
            raise _Refused(404, "NotFoundException", "The specified bucket does not exist.")
        if operation == "GetTableBucketEncryption":
            configuration: dict[str, Any] = {"sseAlgorithm": bucket.encryption["algorithm"]}
            if bucket.encryption["key"]:
                configuration["kmsKeyArn"] = bucket.encryption["key"]
            return _json(200, {"encryptionConfiguration": configuration})
        if operation == "PutTableBucketEncryption":
            bucket.encryption = _table_encryption(_body(call).get("encryptionConfiguration"))
            return 200, {}, b""
        if operation == "DeleteTableBucketEncryption":
            bucket.encryption = dict(_SSE_S3)
            return 204, {}, b""
        if operation == "DeleteTableBucket":
            del self.tables[key]
            return 204, {}, b""
        return _json(200, _table_summary(bucket))

    def _create_table_bucket(self, call: _Call) -> tuple[int, dict[str, str], bytes]:
        request = _body(call)
        name = request.get("name")
        if not isinstance(name, str) or not _TABLE_NAME.match(name):
            raise _Refused(400, "BadRequestException", f"{name!r} is not a table bucket name")
        bucket = _Bucket(name, call.account, call.region)
        _authorize(call, "CreateTableBucket", bucket.table_arn)
        key = (call.account, call.region, name)
        if key in self.tables:
            raise _Refused(409, "ConflictException", "The bucket already exists.")
        if request.get("encryptionConfiguration") is not None:
            _authorize(call, "PutTableBucketEncryption", bucket.table_arn)
            bucket.encryption = _table_encryption(request["encryptionConfiguration"])
        self.tables[key] = bucket
        return _json(200, {"arn": bucket.table_arn})

    def _list_table_buckets(self, call: _Call) -> tuple[int, dict[str, str], bytes]:
        prefix = call.query.get("prefix", "")
        wanted = call.query.get("type")
        buckets = sorted(
            (
                bucket
                for (account, region, name), bucket in self.tables.items()
                if (account, region) == (call.account, call.region)
                and name.startswith(prefix)
                and wanted in (None, "customer")  # no AWS managed table buckets here
            ),
            key=lambda bucket: bucket.name,
        )
        token = call.query.get("continuationToken")
        if token:
            buckets = [bucket for bucket in buckets if bucket.name > token]
        size = int(call.query.get("maxBuckets") or 1000)
        page = buckets[:size]
        document: dict[str, Any] = {"tableBuckets": [_table_summary(b) for b in page]}
        if len(page) < len(buckets):
            document["continuationToken"] = page[-1].name
        return _json(200, document)

    # -- S3 Vectors (rest-json, POST /<Operation>) -------------------------------------------------

    def _vectors(self, call: _Call) -> tuple[int, dict[str, str], bytes]:
        operation = call.path.strip("/")
        if call.method != "POST" or operation not in _VECTOR_OPERATIONS:
            raise _Refused(400, "ValidationException", f"{call.method} {call.path} is not emulated")
        request = _body(call)
        if operation == "ListVectorBuckets":
            _authorize(call, operation, "*")
            return self._list_vector_buckets(call, request)
        name = _vector_bucket_name(request, call)
        key = (call.account, call.region, name)
        arn = BucketRef(name, call.account, call.region, BucketKind.VECTOR).arn
        if operation == "CreateVectorBucket":
            _authorize(call, operation, arn)
            if not _VECTOR_NAME.match(name):
                raise _Refused(400, "ValidationException", f"{name!r} is not a vector bucket name")
            if key in self.vectors:
                raise _Refused(409, "ConflictException", "The vector bucket already exists.")
            bucket = _Bucket(name, call.account, call.region)
            bucket.encryption = _vector_encryption(request.get("encryptionConfiguration"))
            self.vectors[key] = bucket
            self.indexes[key] = {}
            return _json(200, {"vectorBucketArn": arn})
        existing = self.vectors.get(key)
        if operation in _INDEX_OPERATIONS:
            _authorize(call, operation, f"{arn}/index/{request.get('indexName')}")
            return self._vector_index(operation, existing, self.indexes.get(key), request)
        _authorize(call, operation, arn)
        if existing is None:
            raise _Refused(404, "NotFoundException", "The specified vector bucket was not found.")
        indexes = self.indexes[key]
        if operation == "GetVectorBucket":
            return _json(200, {"vectorBucket": _vector_summary(existing, with_encryption=True)})
        if operation == "DeleteVectorBucket":
            if indexes:
                raise _Refused(409, "ConflictException", "The vector bucket is not empty.")
            del self.vectors[key], self.indexes[key]
            return _json(200, {})
        # ListIndexes
        names = sorted(n for n in indexes if n.startswith(str(request.get("prefix") or "")))
        token = request.get("nextToken")
        if token:
            names = [n for n in names if n > token]
        size = int(request.get("maxResults") or 500)
        page = names[:size]
        document: dict[str, Any] = {
            "indexes": [
                {"vectorBucketName": name, "indexName": n, "indexArn": f"{arn}/index/{n}",
                 "creationTime": existing.created}
                for n in page
            ]
        }  # fmt: skip
        if len(page) < len(names):
            document["nextToken"] = page[-1]
        return _json(200, document)

    def _vector_index(
        self,
        operation: str,
        bucket: _Bucket | None,
        indexes: dict[str, dict[str, str | None]] | None,
        request: dict[str, Any],
    ) -> tuple[int, dict[str, str], bytes]:
        index_name = request.get("indexName")
        if bucket is None or indexes is None:
            raise _Refused(404, "NotFoundException", "The specified vector bucket was not found.")
        if not isinstance(index_name, str) or not _VECTOR_NAME.match(index_name):
            raise _Refused(400, "ValidationException", f"{index_name!r} is not an index name")
        arn = BucketRef(bucket.name, bucket.account, bucket.region, BucketKind.VECTOR).arn
        index_arn = f"{arn}/index/{index_name}"
        if operation == "CreateIndex":
            if index_name in indexes:
                raise _Refused(409, "ConflictException", "The index already exists.")
            own = request.get("encryptionConfiguration")
            indexes[index_name] = (
                dict(bucket.encryption) if own is None else _vector_encryption(own)
            )
            return _json(200, {"indexArn": index_arn})
        if index_name not in indexes:
            raise _Refused(404, "NotFoundException", "The specified index was not found.")
        if operation == "DeleteIndex":
            del indexes[index_name]
            return _json(200, {})
        return _json(
            200,
            {
                "index": {
                    "vectorBucketName": bucket.name,
                    "indexName": index_name,
                    "indexArn": index_arn,
                    "creationTime": bucket.created,
                    "dataType": "float32",
                    "dimension": 4,
                    "distanceMetric": "cosine",
                    "encryptionConfiguration": _vector_configuration(indexes[index_name]),
                }
            },
        )

    def _list_vector_buckets(
        self, call: _Call, request: dict[str, Any]
    ) -> tuple[int, dict[str, str], bytes]:
        prefix = str(request.get("prefix") or "")
        buckets = sorted(
            (
                bucket
                for (account, region, name), bucket in self.vectors.items()
                if (account, region) == (call.account, call.region) and name.startswith(prefix)
            ),
            key=lambda bucket: bucket.name,
        )
        token = request.get("nextToken")
        if token:
            buckets = [bucket for bucket in buckets if bucket.name > token]
        size = int(request.get("maxResults") or 500)
        page = buckets[:size]
        document: dict[str, Any] = {
            "vectorBuckets": [_vector_summary(b, with_encryption=False) for b in page]
        }
        if len(page) < len(buckets):
            document["nextToken"] = page[-1].name
        return _json(200, document)


_VECTOR_OPERATIONS = frozenset(
    {
        "CreateVectorBucket",
        "GetVectorBucket",
        "ListVectorBuckets",
        "DeleteVectorBucket",
        "CreateIndex",
        "GetIndex",
        "ListIndexes",
        "DeleteIndex",
    }
)
# The s3vectors model's bucket and index name pattern (3-63 characters).
_INDEX_OPERATIONS = frozenset({"CreateIndex", "GetIndex", "DeleteIndex"})
_VECTOR_NAME = re.compile(r"^[a-z0-9][a-z0-9-.]{1,61}[a-z0-9]$")
_VECTOR_ARN = re.compile(
    r"^arn:aws[-a-z0-9]*:s3vectors:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):"
    r"bucket/(?P<name>[a-z0-9][a-z0-9-.]{1,61}[a-z0-9])$"
)


def _vector_bucket_name(request: dict[str, Any], call: _Call) -> str:
    arn = request.get("vectorBucketArn")
    if isinstance(arn, str) and arn:
        match = _VECTOR_ARN.match(arn)
        if match is None:
            raise _Refused(400, "ValidationException", f"{arn!r} is not a vector bucket ARN")
        if (match["account"], match["region"]) != (call.account, call.region):
            raise _Refused(403, "AccessDeniedException", f"Access denied to {arn}")
        return match["name"]
    name = request.get("vectorBucketName")
    if not isinstance(name, str) or not name:
        raise _Refused(
            400, "ValidationException", "vectorBucketName or vectorBucketArn is required"
        )
    return name


def _vector_encryption(configuration: Any) -> dict[str, str | None]:
    """S3 Vectors' EncryptionConfiguration (botocore s3vectors model): sseType AES256 or aws:kms,
    kmsKeyArn a full key ARN, needed for aws:kms; none at all is SSE-S3."""
    if configuration is None:
        return dict(_SSE_S3)
    if not isinstance(configuration, dict):
        raise _Refused(400, "ValidationException", "encryptionConfiguration must be an object")
    algorithm = configuration.get("sseType", "AES256")
    if algorithm not in _ALGORITHMS:
        raise _Refused(400, "ValidationException", "sseType must be AES256 or aws:kms")
    key = configuration.get("kmsKeyArn")
    if algorithm == "aws:kms" and not key:
        raise _Refused(400, "ValidationException", "kmsKeyArn is required for aws:kms")
    if key is not None and not _TABLE_KEY_ARN.match(str(key)):
        raise _Refused(400, "ValidationException", f"kmsKeyArn {key!r} is not a KMS key ARN")
    return {"algorithm": algorithm, "key": key if algorithm == "aws:kms" else None}


def _vector_configuration(encryption: dict[str, str | None]) -> dict[str, str]:
    configuration = {"sseType": str(encryption["algorithm"])}
    if encryption["key"]:
        configuration["kmsKeyArn"] = encryption["key"]
    return configuration


def _vector_summary(bucket: _Bucket, *, with_encryption: bool) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "vectorBucketName": bucket.name,
        "vectorBucketArn": BucketRef(
            bucket.name, bucket.account, bucket.region, BucketKind.VECTOR
        ).arn,
        "creationTime": bucket.created,
    }
    if with_encryption:
        summary["encryptionConfiguration"] = _vector_configuration(bucket.encryption)
    return summary


def _signing_service(environ: dict[str, Any]) -> str | None:
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    match = re.search(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request", authorization)
    return match.group(1) if match else None


def _parse(environ: dict[str, Any], *, signed: bool = True) -> _Call:
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    credential = re.search(r"Credential=([^/]+)/\d{8}/([^/]+)/", authorization)
    if credential is None and signed:
        raise _Refused(403, "AccessDenied", "Requests must be signed with SigV4")
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", ""), True).items()}
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    return _Call(
        account=get_account_id_from(credential.group(1)) if credential else "",
        region=credential.group(2) if credential else "",
        method=environ["REQUEST_METHOD"],
        path=environ.get("PATH_INFO", "/"),
        query=query,
        headers=headers,
        body=body,
    )


def _authorize(call: _Call, action: str, resource: str) -> None:
    """moto's IAM policy evaluation, when it enforces IAM, as moto's own services use it."""
    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        ActionAuthenticatorMixin.request_count += 1
        return
    request = IAMRequest(
        account_id=call.account,
        method=call.method,
        path=call.path,
        data={},
        body=call.body,
        headers={"Authorization": call.headers.get("authorization", "")},
        action=action,
    )
    try:
        request.check_action_permitted(resource)
    except AccessDeniedError as denied:
        raise _Refused(403, "AccessDenied", denied.message) from denied


def _directory_encryption(body: bytes) -> dict[str, str | None]:
    try:
        root = ET.fromstring(body)
    except ET.ParseError as error:
        raise _Refused(400, "MalformedXML", str(error)) from error
    rules = [element for element in root if element.tag.endswith("Rule")]
    if len(rules) != 1:
        raise _Refused(400, "InvalidArgument", "A directory bucket takes exactly one rule")
    algorithm = _text(rules[0], "ApplyServerSideEncryptionByDefault/SSEAlgorithm")
    key = _text(rules[0], "ApplyServerSideEncryptionByDefault/KMSMasterKeyID")
    # "Directory buckets - ... SSE-S3 (AES256) and SSE-KMS (aws:kms)", and for the key "only use
    # the key ID or key ARN. The key alias format of the KMS key isn't supported" (S3 API
    # Reference, ServerSideEncryptionByDefault).
    if algorithm not in _ALGORITHMS:
        raise _Refused(
            400, "InvalidArgument", "Directory buckets support only AES256 and aws:kms encryption"
        )
    if algorithm == "aws:kms" and (not key or key.startswith("alias/") or ":alias/" in key):
        raise _Refused(
            400,
            "InvalidArgument",
            "SSE-KMS on a directory bucket needs a customer managed key's id or ARN",
        )
    return {"algorithm": algorithm, "key": key if algorithm == "aws:kms" else None}


def _keep_lifetime_key(bucket: _Bucket, encryption: dict[str, str | None]) -> None:
    """ "After you specify a customer managed key for SSE-KMS, you can't override the customer
    managed key for the bucket's SSE-KMS configuration" (S3 User Guide, "Using SSE-KMS in
    directory buckets"). The error S3 answers is not documented: InvalidArgument here."""
    key = encryption["key"]
    if key is None:
        return
    if bucket.lifetime_key is not None and _key_id(key) != _key_id(bucket.lifetime_key):
        raise _Refused(
            400,
            "InvalidArgument",
            f"This directory bucket's customer managed key is {bucket.lifetime_key} for its "
            "lifetime",
        )
    bucket.lifetime_key = key


def _key_id(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def _table_encryption(configuration: Any) -> dict[str, str | None]:
    """S3 Tables' EncryptionConfiguration: sseAlgorithm AES256 or aws:kms, kmsKeyArn a key ARN,
    required for aws:kms (botocore s3tables model; S3 User Guide, "Using SSE-KMS in table
    buckets")."""
    if not isinstance(configuration, dict) or configuration.get("sseAlgorithm") not in _ALGORITHMS:
        raise _Refused(400, "BadRequestException", "sseAlgorithm must be AES256 or aws:kms")
    key = configuration.get("kmsKeyArn")
    if configuration["sseAlgorithm"] == "aws:kms" and not key:
        raise _Refused(400, "BadRequestException", "kmsKeyArn is required for aws:kms")
    if key is not None and not _TABLE_KEY_ARN.match(str(key)):
        raise _Refused(400, "BadRequestException", f"kmsKeyArn {key!r} is not a KMS key ARN")
    return {"algorithm": configuration["sseAlgorithm"], "key": key}


def _encryption_xml(encryption: dict[str, str | None]) -> bytes:
    root = ET.Element("ServerSideEncryptionConfiguration", xmlns=_S3_NAMESPACE)
    rule = ET.SubElement(root, "Rule")
    by_default = ET.SubElement(rule, "ApplyServerSideEncryptionByDefault")
    ET.SubElement(by_default, "SSEAlgorithm").text = encryption["algorithm"]
    if encryption["key"]:
        ET.SubElement(by_default, "KMSMasterKeyID").text = encryption["key"]
    # Directory buckets always use S3 Bucket Keys with SSE-KMS.
    ET.SubElement(rule, "BucketKeyEnabled").text = str(encryption["algorithm"] == "aws:kms").lower()
    return _xml(root)


def _table_key(arn: str, call: _Call) -> tuple[str, str, str]:
    _, _, _, region, account, resource = arn.split(":", 5)
    if account != call.account:
        # S3 Tables has no cross-account bucket API without a bucket policy: refused as AWS does.
        raise _Refused(403, "AccessDeniedException", f"Access denied to {arn}")
    return account, region, resource.split("/", 1)[1]


def _table_summary(bucket: _Bucket) -> dict[str, Any]:
    return {
        "arn": bucket.table_arn,
        "name": bucket.name,
        "ownerAccountId": bucket.account,
        "createdAt": bucket.created,
        "tableBucketId": bucket.bucket_id,
        "type": "customer",
    }


def _text(element: ET.Element | None, path: str) -> str | None:
    if element is None:
        return None
    found = element.find("/".join(f"{{*}}{part}" for part in path.split("/")))
    return None if found is None or found.text is None else found.text.strip()


def _body(call: _Call) -> dict[str, Any]:
    try:
        document = json.loads(call.body or b"{}")
    except ValueError as error:
        raise _Refused(400, "BadRequestException", f"body is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise _Refused(400, "BadRequestException", "body is not a JSON object")
    return document


def _xml(root: ET.Element) -> bytes:
    return bytes(ET.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _json(status: int, document: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(document).encode()


def _xml_error(refused: _Refused) -> tuple[int, dict[str, str], bytes]:
    root = ET.Element("Error")
    ET.SubElement(root, "Code").text = refused.code
    ET.SubElement(root, "Message").text = refused.message
    return refused.status, _XML, _xml(root)


def _json_error(refused: _Refused) -> tuple[int, dict[str, str], bytes]:
    code = {"AccessDenied": "AccessDeniedException"}.get(refused.code, refused.code)
    status, headers, body = _json(refused.status, {"message": refused.message})
    return status, {**headers, "x-amzn-ErrorType": code}, body


_XML = {"Content-Type": "application/xml"}
_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    501: "Not Implemented",
    503: "Service Unavailable",
}
# This emulator's own call (no AWS API): marks a directory bucket inactive, or active again.
INACTIVE_PATH = "/_local/directory-buckets/inactive"
