"""Powertools logger, metrics and tracer, shared by both functions' handlers."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

from .lifecycle import Action
from .models import Status
from .settings import METRICS_NAMESPACE, SERVICE_NAME

_service = os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE_NAME)
logger = Logger(service=_service)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE))
# Only botocore is patched: it is the one library the functions use, and patching everything
# X-Ray knows imports requests, httplib and sqlite3 hooks at every cold start.
tracer = Tracer(service=_service, patch_modules=("botocore",))

STATUS_METRIC = {
    Status.COMPLIANT: "CompliantBuckets",
    Status.DRIFT: "Drifts",
    Status.UNVERIFIABLE: "Unverifiable",
    Status.EXEMPT: "ExemptBuckets",
    Status.VANISHED: "VanishedBuckets",
}

ACTION_METRIC = {
    Action.ALERT: "AlertsSent",
    Action.SUPPRESS: "SuppressedRepeats",
    Action.RESOLVE: "Resolved",
    Action.SUPERSEDED: "SupersededEvaluations",
}
