"""Powertools logger and metrics, shared by the functions' handlers.

No Powertools ``Tracer``: it is the AWS X-Ray SDK, which reaches end of support on 2027-02-25 (X-Ray
Developer Guide, "X-Ray SDK and daemon end of support timeline"). Lambda's active tracing records
each invocation's segment without any SDK; the README says how to add OpenTelemetry (the ADOT
layer) for subsegments.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

from ..domain.lifecycle import Action
from ..domain.models import Status
from ..domain.settings import METRICS_NAMESPACE, SERVICE_NAME

_service = os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE_NAME)
logger = Logger(service=_service)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE))

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
