"""Plays CloudTrail: the management event S3 would have logged for a call (moto emits none)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

DEMO_ACTOR = "arn:aws:sts::123456789012:assumed-role/PlatformAdmin/alice"
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
) -> dict[str, Any]:
    """The ``detail`` of an "AWS API Call via CloudTrail" event, shaped like CloudTrail 1.10."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    detail: dict[str, Any] = {
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLEROLEID:alice",
            "arn": actor_arn,
            "accountId": account,
            "accessKeyId": "ASIAEXAMPLEKEYID",
            "sessionContext": {
                "attributes": {"creationDate": now, "mfaAuthenticated": "true"},
            },
        },
        "eventTime": now,
        "eventSource": "s3.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": "[aws-cli/2.27.0 md/awscrt#0.26.1 ua/2.1 os/linux]",
        "requestParameters": {
            "bucketName": bucket,
            "Host": f"{bucket}.s3.{region}.amazonaws.com",
            **(request_parameters or {}),
        },
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
        "resources": [
            {"accountId": account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}
        ],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": f"{bucket}.s3.{region}.amazonaws.com",
        },
    }
    if error_code:
        detail["errorCode"] = error_code
        detail["errorMessage"] = "Access Denied"
    return detail
