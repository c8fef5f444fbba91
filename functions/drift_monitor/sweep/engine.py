"""Every bucket of an account through the same ``assess`` as the event path, a few at a time.

Used by the scheduled sweep (one digest per run) and by the scanner. Memory holds one listing
page, the buckets in flight and the findings the caller keeps: never the whole account.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Protocol

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from ..aws.credentials import error_code
from ..domain.assessment import (
    BucketReader,
    ExemptTags,
    KeyFacts,
    OrganizationAccounts,
    assess,
    role_refused,
    unreadable,
    unverifiable,
)
from ..domain.errors import BucketUnreadable, BucketVanished, ListingDenied, RoleRefused
from ..domain.evaluation import EXEMPT_BY_NAME
from ..domain.models import BucketRef, Code, Finding, ListedBucket, Status, Trigger
from ..domain.policy import Policy
from ..domain.settings import DEFAULT_CONCURRENCY

UNKNOWN_REGION = "unknown"


class SweepReader(BucketReader, Protocol):
    """What a sweep needs of S3 beyond ``assess``: the listing, and a region when it lacks one."""

    def list_buckets(self, account: str | None = None) -> Iterator[ListedBucket]: ...

    def locate(self, bucket: BucketRef) -> str: ...


class RegionalReader(Protocol):
    """The listings of the kinds of bucket listed per region (§12)."""

    def list_directory_buckets(
        self, account: str | None, region: str
    ) -> Iterator[ListedBucket]: ...

    def list_table_buckets(self, account: str | None, region: str) -> Iterator[ListedBucket]: ...

    def list_vector_buckets(self, account: str | None, region: str) -> Iterator[ListedBucket]: ...


@dataclass(frozen=True)
class RegionalListing:
    buckets: tuple[ListedBucket, ...]
    # What could not be listed, one line each ("directory buckets in us-west-1: AccessDenied...")
    errors: tuple[str, ...]
    # Where the service has no endpoint, so no bucket of that kind: "table buckets in ap-east-2"
    not_offered: tuple[str, ...] = ()
    # Listings that answered with entries that are no bucket of their kind, one line each.
    skipped: tuple[str, ...] = ()


def list_regional(
    reader: RegionalReader, account: str | None, regions: Iterable[str]
) -> RegionalListing:
    """Every directory, table and vector bucket of the account in ``regions``. A listing that fails
    (refused, a region where the service is not offered, S3 failing after retries) is reported
    and the others go on: one region's refusal never hides another region's buckets."""
    buckets: list[ListedBucket] = []
    errors: list[str] = []
    not_offered: list[str] = []
    skipped: list[str] = []
    for region in regions:
        for what, listing in (
            ("directory buckets", reader.list_directory_buckets),
            ("table buckets", reader.list_table_buckets),
            ("vector buckets", reader.list_vector_buckets),
        ):
            try:
                listed = list(listing(account, region))
                wrong = [bucket for bucket in listed if bucket.not_this_kind]
                buckets.extend(bucket for bucket in listed if not bucket.not_this_kind)
                if wrong:
                    skipped.append(
                        f"{len(wrong)} entries listed as {what} in {region} are not {what} "
                        f"({wrong[0].not_this_kind}: {wrong[0].name}...): skipped; an "
                        "S3-compatible store without them answers with its other buckets"
                    )
            except EndpointConnectionError:
                # Inside AWS, a regional endpoint that cannot be reached does not exist: the
                # service is not offered there, so there is nothing of that kind to list.
                not_offered.append(f"{what} in {region}")
            except (ListingDenied, ClientError, BotoCoreError) as error:
                errors.append(f"{what} in {region} could not be listed: {_reason(error)}")
    return RegionalListing(tuple(buckets), tuple(errors), tuple(not_offered), tuple(skipped))


def cannot_sweep(refused: Exception, *, role_arn: str | None, management_account: bool) -> str:
    """Why an account could not be swept, and what to check. ``role_arn``: the reader role it
    is read through (None: the caller's own account); ``management_account``: the organization's
    management account, under a delegated administrator, which StackSets never reach."""
    if isinstance(refused, RoleRefused):
        if management_account:
            return (
                "the organization's management account is not covered: StackSets never deploy "
                f"to it (CloudFormation API, DeploymentTargets), so {refused.role_arn} and its "
                "forwarders exist only once the ManagementAccount stacks are deployed there with "
                "cdk deploy (see the README)"
            )
        return (
            f"could not assume {refused.role_arn} ({refused.error_code}): check that the member "
            "StackSet reached this account and that no SCP denies sts:AssumeRole"
        )
    if role_arn is None:
        return f"{refused}; the sweep worker's role needs s3:ListAllMyBuckets"
    return f"{refused}; {role_arn} needs s3:ListAllMyBuckets"


def _reason(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or error)
    return str(error)


@dataclass
class Tally:
    """Counts every finding; keeps only those the caller asked for."""

    keep: Callable[[Finding], bool]
    statuses: Counter[Status] = field(default_factory=Counter)
    violations: Counter[Code] = field(default_factory=Counter)
    kept: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        self.statuses[finding.status] += 1
        if finding.alerts:
            self.violations.update({violation.code for violation in finding.violations})
        if self.keep(finding):
            self.kept.append(finding)

    @property
    def evaluated(self) -> int:
        return sum(self.statuses.values())

    @property
    def alerting(self) -> int:
        return self.statuses[Status.DRIFT] + self.statuses[Status.UNVERIFIABLE]


@dataclass(frozen=True)
class SweepResult:
    account: str
    tally: Tally
    complete: bool
    # When the run stopped early: the last bucket name handed out for evaluation. Listing order
    # is by name, so a later run (or the scanner) can tell where the gap starts.
    stopped_after: str | None = None


def sweep(
    account: str,
    policy: Policy,
    reader: SweepReader,
    trigger: Trigger,
    *,
    keep: Callable[[Finding], bool],
    buckets: Iterable[ListedBucket] | None = None,
    exempt_tags: ExemptTags | None = None,
    keys: KeyFacts | None = None,
    organization: OrganizationAccounts | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_finding: Callable[[Finding], None] | None = None,
    out_of_time: Callable[[], bool] = lambda: False,
) -> SweepResult:
    """Evaluates every bucket of ``buckets`` (default: the account's whole listing); a failure on
    one bucket never stops the others.

    ``ListingDenied``, ``RoleRefused`` and errors of ``ListBuckets`` itself propagate: without the
    listing there is nothing to report.
    """
    tally = Tally(keep)
    last_started: str | None = None
    complete = True

    def record(done: Iterable[Future[Finding]]) -> None:
        for future in done:
            finding = future.result()
            tally.add(finding)
            if on_finding:
                on_finding(finding)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sweep") as pool:
        in_flight: set[Future[Finding]] = set()
        listing = reader.list_buckets(account) if buckets is None else buckets
        for listed in listing:
            # At least one bucket per call, so a run that resumes always gets further.
            if last_started is not None and out_of_time():
                complete = False
                break
            in_flight.add(
                pool.submit(
                    assess_listed,
                    listed,
                    account,
                    policy,
                    reader,
                    trigger,
                    exempt_tags=exempt_tags,
                    keys=keys,
                    organization=organization,
                )
            )
            last_started = listed.name
            # A bounded window: a million-bucket listing never becomes a million futures.
            if len(in_flight) >= 2 * concurrency:
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                record(done)
        done, _ = wait(in_flight)
        record(done)
    return SweepResult(
        account=account,
        tally=tally,
        complete=complete,
        stopped_after=None if complete else last_started,
    )


def assess_listed(
    listed: ListedBucket,
    account: str,
    policy: Policy,
    reader: SweepReader,
    trigger: Trigger,
    *,
    exempt_tags: ExemptTags | None = None,
    keys: KeyFacts | None = None,
    organization: OrganizationAccounts | None = None,
) -> Finding:
    """One bucket of the listing; every S3 error becomes a finding rather than an exception."""
    bucket = BucketRef(listed.name, account, listed.region or UNKNOWN_REGION, listed.kind)
    try:
        if listed.region is None:
            bucket = BucketRef(listed.name, account, reader.locate(bucket))
        return assess(
            bucket,
            trigger,
            policy,
            reader,
            exempt_tags=exempt_tags,
            keys=keys,
            organization=organization,
        )
    except BucketVanished as vanished:
        return Finding(bucket, Status.VANISHED, None, (), trigger, detail=str(vanished))
    except BucketUnreadable as denied:  # GetBucketLocation refused
        finding = unverifiable(bucket, trigger, denied)
    except RoleRefused as refused:  # the role expired and could not be assumed again
        finding = role_refused(bucket, trigger, refused)
    except (ClientError, BotoCoreError) as error:
        # Throttling, 5xx and timeouts that outlasted the client's retries.
        reason = (error_code(error) or "error") if isinstance(error, ClientError) else None
        finding = unreadable(bucket, trigger, reason or type(error).__name__, str(error))
    if policy.is_exempt_name(bucket.name):
        return replace(finding, status=Status.EXEMPT, detail=EXEMPT_BY_NAME)
    return finding
