"""The StackSet instances the local pipeline deploys, answered as CloudFormation does.

moto lists no instance of a service-managed StackSet: it deploys only to accounts it is given,
and a service-managed StackSet takes organizational units. The pipeline deploys the member
templates itself (``LocalPipeline.deploy_member``) and records each instance here, through this
emulator's own call ``POST /_local/cloudformation/stack-instances`` (JSON: stackSetName, account,
region, status, statusReason); a test may set an instance's status the same way (OUTDATED,
INOPERABLE, as CloudFormation reports a failed or stale instance). ``ListStackInstances`` for
those StackSets is answered here in the query protocol's XML (CloudFormation API Reference,
ListStackInstances, StackInstanceSummary); every other CloudFormation call goes to moto.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

INSTANCES_PATH = "/_local/cloudformation/stack-instances"
STATUSES = ("CURRENT", "OUTDATED", "INOPERABLE")
_NAMESPACE = "http://cloudformation.amazonaws.com/doc/2010-05-15/"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class LocalStackSets:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # stack set name -> (account, region) -> instance
        self._instances: dict[str, dict[tuple[str, str], dict[str, str]]] = {}

    def wrap(self, app: WsgiApp) -> WsgiApp:
        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            if environ.get("PATH_INFO") == INSTANCES_PATH:
                return self._record(_body(environ), start_response)
            if _is_cloudformation(environ) and environ.get("REQUEST_METHOD") == "POST":
                body = _body(environ)
                environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again if not ours
                form = {k: v[0] for k, v in parse_qs(body.decode(), True).items()}
                name = form.get("StackSetName")
                if form.get("Action") == "ListStackInstances" and name in self._instances:
                    return self._list(name, start_response)
            return app(environ, start_response)

        return middleware

    def _record(self, body: bytes, start_response: Callable[..., Any]) -> list[bytes]:
        instance = json.loads(body)
        if instance.get("status") not in STATUSES:
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [json.dumps({"message": f"status must be one of {STATUSES}"}).encode()]
        with self._lock:
            by_target = self._instances.setdefault(instance["stackSetName"], {})
            by_target[(instance["account"], instance["region"])] = instance
        start_response("204 No Content", [])
        return []

    def _list(self, name: str, start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            instances = list(self._instances[name].values())
        members = "".join(_summary(name, instance) for instance in instances)
        body = (
            f'<ListStackInstancesResponse xmlns="{_NAMESPACE}"><ListStackInstancesResult>'
            f"<Summaries>{members}</Summaries></ListStackInstancesResult>"
            "<ResponseMetadata><RequestId>local</RequestId></ResponseMetadata>"
            "</ListStackInstancesResponse>"
        ).encode()
        start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
        return [body]


def _summary(name: str, instance: dict[str, str]) -> str:
    account, region, status = instance["account"], instance["region"], instance["status"]
    detailed = {"CURRENT": "SUCCEEDED", "OUTDATED": "FAILED", "INOPERABLE": "INOPERABLE"}[status]
    reason = escape(instance.get("statusReason") or "")
    return (
        "<member>"
        f"<StackSetId>{escape(name)}:local</StackSetId>"
        f"<Region>{escape(region)}</Region><Account>{escape(account)}</Account>"
        f"<StackId>arn:aws:cloudformation:{escape(region)}:{escape(account)}:stack/"
        f"StackSet-{escape(name)}/local</StackId>"
        f"<Status>{status}</Status>"
        + (f"<StatusReason>{reason}</StatusReason>" if reason else "")
        + f"<StackInstanceStatus><DetailedStatus>{detailed}</DetailedStatus></StackInstanceStatus>"
        "</member>"
    )


def _body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length else b""


def _is_cloudformation(environ: dict[str, Any]) -> bool:
    return "/cloudformation/aws4_request" in str(environ.get("HTTP_AUTHORIZATION", ""))
