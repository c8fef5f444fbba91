"""What the scanner's formats for other tools make of one bucket's §6 document: an OCSF event,
a row of the self-contained HTML page, and the page around the rows (``scanner/outputs.py``
writes them). Each is built from the same document as ``--format json``, so every format says the
same thing about a bucket.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from functions.drift_monitor.domain.alerts import describe_exception
from functions.drift_monitor.domain.asff import finding_id, noun
from functions.drift_monitor.domain.models import Status, partition_of
from functions.drift_monitor.domain.policy import Policy
from functions.drift_monitor.sweep.digest import summary

from .formats import AccountScan, totals

PRODUCT = "S3 Encryption Drift Monitor"
# OCSF: the released schema version the Compliance Finding events follow (class 2003).
OCSF_VERSION = "1.2.0"
_OCSF_SEVERITY = {"INFO": (1, "Informational"), "LOW": (2, "Low"), "MEDIUM": (3, "Medium"),
                  "HIGH": (4, "High")}  # fmt: skip
_OCSF_COMPLIANCE = {
    Status.COMPLIANT.value: (1, "Pass"),
    Status.EXEMPT.value: (1, "Pass"),
    Status.UNVERIFIABLE.value: (2, "Warning"),  # no result: the configuration could not be read
    Status.DRIFT.value: (3, "Fail"),
}
_OCSF_FINDING_STATUS = {Status.DRIFT.value: (1, "New"), Status.UNVERIFIABLE.value: (1, "New"),
                        Status.EXEMPT.value: (3, "Suppressed")}  # fmt: skip
_AWS_ACCOUNT = 10  # OCSF account.type_id "AWS Account"


# The CloudFormation type names, as OCSF resources name AWS resources.
_OCSF_RESOURCE_TYPE = {
    "general-purpose": "AWS::S3::Bucket",
    "directory": "AWS::S3Express::DirectoryBucket",
    "table": "AWS::S3Tables::TableBucket",
}


def ocsf_event(document: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """One OCSF Compliance Finding (class 2003, Create)."""
    status = document["status"]
    severity_id, severity = _OCSF_SEVERITY.get(document["severity"] or "INFO", (1, "Informational"))
    compliance_id, compliance = _OCSF_COMPLIANCE[status]
    codes = [violation["code"] for violation in document["violations"]]
    bucket, account, region = document["bucket"], document["account"], document["region"]
    title = f"{noun(document)} {bucket} default encryption: {status}"
    event: dict[str, Any] = {
        "class_uid": 2003,
        "class_name": "Compliance Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200301,
        "type_name": "Compliance Finding: Create",
        "time": now_ms,
        "severity_id": severity_id,
        "severity": severity,
        "message": title,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": PRODUCT, "vendor_name": PRODUCT, "version": _our_version()},
        },
        "finding_info": {
            "uid": finding_id(document),
            "title": title,
            "desc": " ".join(v["message"] for v in document["violations"])
            or ("The bucket's default encryption meets the policy in force."),
            "types": ["S3 Default Encryption"],
        },
        "compliance": {
            "control": "S3 default encryption",
            "standards": [f"{PRODUCT} policy"],
            "status_id": compliance_id,
            "status": compliance,
            "status_detail": ", ".join(codes) or status,
        },
        "resource": {
            "uid": document["bucketArn"],
            "name": bucket,
            "type": _OCSF_RESOURCE_TYPE[document["bucketKind"]],
            "region": region,
            "cloud_partition": partition_of(region),
            "data": {"observed": document["observed"]},
        },
        "cloud": {
            "provider": "AWS",
            "region": region,
            "account": {"uid": account, "type_id": _AWS_ACCOUNT, "type": "AWS Account"},
        },
        "unmapped": {
            "status": status,
            "violations": document["violations"],
            # §15: the exception in force or expired, and the violations it still accepts.
            "exception": document.get("exception"),
            "exemptViolations": document.get("exemptViolations") or [],
        },
    }
    if status in _OCSF_FINDING_STATUS:
        event["status_id"], event["status"] = _OCSF_FINDING_STATUS[status]
    if document["remediation"]:
        event["remediation"] = {"desc": document["remediation"]}
    return event


def _our_version() -> str:
    try:
        return version("s3-encryption-drift-monitor")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout without installing
        return "unknown"


# -- HTML ---------------------------------------------------------------------------------------

_COLOURS = {"DRIFT": "#c62828", "UNVERIFIABLE": "#ef8f00", "EXEMPT": "#00838f",
            "COMPLIANT": "#2e7d32"}  # fmt: skip
CHART_STATUSES = ("DRIFT", "UNVERIFIABLE", "EXEMPT", "COMPLIANT")


def html_page(
    rows: dict[str, list[str]],
    chart: dict[tuple[str, str], Counter[str]],
    scans: list[AccountScan],
    policy: Policy,
    *,
    caller: str,
    generated_at: str,
) -> str:
    """One page, no script and nothing fetched: inline styles, an inline SVG chart of statuses
    by account and region (``chart``: counts by account and region), and a table per status
    (``rows``: each bucket's ``html_row``, by status). Prints on A4 or Letter."""
    counts = summary(totals(scans))
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>S3 default encryption, {e(caller)}, {e(generated_at)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>S3 default encryption</h1>",
        f'<p class="meta">Scanned from account {e(caller)} at {e(generated_at)} by '
        f"{PRODUCT} {e(_our_version())}.</p>",
        '<table class="summary"><tr>'
        + "".join(f"<th>{e(name)}</th>" for name in counts)
        + "</tr><tr>"
        + "".join(f"<td>{n}</td>" for n in counts.values())
        + "</tr></table>",
    ]
    unreachable = [scanned for scanned in scans if scanned.error]
    if unreachable:
        parts.append("<h2>Accounts not scanned</h2><ul>")
        parts += [f"<li>{e(s.account)}: {e(str(s.error))}</li>" for s in unreachable]
        parts.append("</ul>")
    parts.append("<h2>Statuses by account and region</h2>")
    parts.append(_chart(chart))
    for status in CHART_STATUSES:
        listed = rows.get(status)
        if listed:
            parts.append(f'<h2 id="{status.lower()}">{e(status.title())} ({len(listed)})</h2>')
            parts.append(_TABLE_HEAD + "\n".join(listed) + "\n</tbody></table>")
    parts.append("<h2>Policy in force</h2>")
    parts.append(f"<pre>{e(json.dumps(policy.to_dict(), indent=2, sort_keys=True))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _chart(groups: dict[tuple[str, str], Counter[str]]) -> str:
    """Horizontal stacked bars, one per account and region, in inline SVG."""
    if not groups:
        return "<p>No buckets.</p>"
    label_width, bar_width, row_height = 260, 420, 26
    largest = max(sum(counter.values()) for counter in groups.values())
    height = row_height * len(groups) + 40
    svg = [
        f'<svg role="img" aria-label="Buckets by status for each account and region" '
        f'width="{label_width + bar_width + 60}" '
        f'height="{height}" font-family="sans-serif" font-size="12">'
    ]
    for row, ((account, region), counter) in enumerate(sorted(groups.items())):
        y = row * row_height + 4
        svg.append(f'<text x="0" y="{y + 15}">{html.escape(account)} {html.escape(region)}</text>')
        x = float(label_width)
        for status in CHART_STATUSES:
            n = counter[status]
            if not n:
                continue
            width = bar_width * n / largest
            svg.append(
                f'<rect class="bar" data-status="{status}" x="{x:.1f}" y="{y}" '
                f'width="{width:.1f}" height="18" fill="{_COLOURS[status]}">'
                f"<title>{status}: {n}</title></rect>"
            )
            x += width
        svg.append(f'<text x="{x + 6:.1f}" y="{y + 15}">{sum(counter.values())}</text>')
    legend_y = row_height * len(groups) + 24
    for index, status in enumerate(CHART_STATUSES):
        x = label_width + index * 110
        svg.append(
            f'<rect x="{x}" y="{legend_y - 10}" width="12" height="12" '
            f'fill="{_COLOURS[status]}"/><text x="{x + 16}" y="{legend_y}">{status}</text>'
        )
    svg.append("</svg>")
    return "\n".join(svg)


_TABLE_HEAD = (
    "<table><thead><tr><th>Account</th><th>Region</th><th>Bucket</th><th>Severity</th>"
    "<th>Observed</th><th>What is wrong</th><th>Fix</th></tr></thead><tbody>\n"
)


def html_row(document: dict[str, Any]) -> str:
    """A bucket's row of its status's table."""
    e = html.escape
    observed = document["observed"]
    rules = (
        "unknown"
        if observed is None
        else "; ".join(
            f"{rule['algorithm']}" + (f" ({rule['kmsKeyId']})" if rule["kmsKeyId"] else "")
            for rule in observed["rules"]
        )
        or "none"
    )
    wrong = "<br>".join(f"<b>{e(v['code'])}</b>: {e(v['message'])}" for v in document["violations"])
    exception = " ".join(describe_exception(document)).strip()
    if exception:
        wrong += f"<br><i>{e(exception)}</i>"
    fix = f"<code>{e(document['remediation'])}</code>" if document["remediation"] else ""
    kind = document["bucketKind"]
    name = e(document["bucket"]) + ("" if kind == "general-purpose" else f" ({e(kind)})")
    return (
        f"<tr><td>{e(document['account'])}</td><td>{e(document['region'])}</td>"
        f"<td>{name}</td><td>{e(document['severity'] or '')}</td>"
        f"<td>{e(rules)}</td><td>{wrong}</td><td>{fix}</td></tr>"
    )


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "h1{margin-bottom:0}.meta{color:#555}"
    "table{border-collapse:collapse;margin:1em 0;width:100%}"
    "th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top;"
    "font-size:13px;word-break:break-word}"
    "th{background:#f2f2f2}table.summary{width:auto}table.summary td{text-align:right}"
    "code{font-size:11px}pre{background:#f7f7f7;padding:8px}"
    "@media print{body{margin:0}h2{break-after:avoid}tr{break-inside:avoid}"
    "th{background:#fff}}"
)
