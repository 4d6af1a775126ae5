"""The job queue: a job waiting for a shop absorbs the same job asked for again, never a different one."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import responses

from shopify_app.app import create_app
from shopify_app.consent import EMAIL_CONSENT_JOB as EMAIL_UNSUBSCRIBE_JOB
from shopify_app.jobs.queue import JobOutcome, JobRunner, enqueue
from shopify_app.models import Job, JobStatus, Shop, Suppression
from shopify_app.runtime import Runtime
from tests import test_abandoned_checkout_flow as checkout_flow
from tests.conftest import RECEIVED_AT
from tests.support import webhooks
from tests.support.db import Db
from tests.support.smtp import SmtpServer
from tests.test_abandoned_checkout_flow import AFTER_DUE, STARTED, abandon, run_worker

# The abandoned checkout tests' fixtures: a loopback SMTP server, the runtime sending to it, the shop described.
mail_runtime, smtp, store = checkout_flow.mail_runtime, checkout_flow.smtp, checkout_flow.store

GRAPHQL = f"https://shopify.test/{webhooks.SHOP}/admin/api/2026-10/graphql.json"


def customer(customer_id: int, email: str) -> dict[str, object]:
    return {"id": customer_id, "email": email, "first_name": email.split("@")[0].title(), "updated_at": STARTED}


def test_two_customers_unsubscribing_before_the_worker_runs_both_reach_shopify(
    store: Runtime, smtp: SmtpServer, db: Db
) -> None:
    abandon(store, "ck-ada", email="ada@example.com", customer=customer(777, "ada@example.com"))
    abandon(store, "ck-grace", email="grace@example.com", customer=customer(778, "grace@example.com"))
    run_worker(store, AFTER_DUE)
    links = {r.recipients[0]: r.parsed()["List-Unsubscribe"].strip("<>") for r in smtp.sink.received}
    assert set(links) == {"ada@example.com", "grace@example.com"}
    client = create_app(store).test_client()
    for link in links.values():  # both click before the worker next runs
        assert client.post(link.removeprefix("https://chorus.example")).status_code == 200

    with responses.RequestsMock() as shopify:
        mutation = shopify.post(
            GRAPHQL,
            json={"data": {"customerEmailMarketingConsentUpdate": {"customer": {"id": "gid://shopify/Customer/1"},
                                                                   "userErrors": []}}},
        )  # fmt: skip
        summary = run_worker(store, AFTER_DUE + timedelta(minutes=1))

    assert summary.jobs.done == 2
    told = sorted(json.loads(call.request.body or "")["variables"]["input"]["customerId"] for call in mutation.calls)
    assert told == ["gid://shopify/Customer/777", "gid://shopify/Customer/778"]
    assert {s.address for s in db.all(Suppression)} == {"ada@example.com", "grace@example.com"}


def test_enqueue_merges_only_identical_pending_jobs(runtime: Runtime, shop: Shop, db: Db) -> None:
    assert shop.id is not None
    ada = {"customer_id": 777, "at": RECEIVED_AT.isoformat()}
    grace = {"customer_id": 778, "at": RECEIVED_AT.isoformat()}
    with db.write() as session:
        first = enqueue(session, shop.id, EMAIL_UNSUBSCRIBE_JOB, RECEIVED_AT, dict(ada))
        session.flush()
        again = enqueue(session, shop.id, EMAIL_UNSUBSCRIBE_JOB, RECEIVED_AT, dict(ada))
        other = enqueue(session, shop.id, EMAIL_UNSUBSCRIBE_JOB, RECEIVED_AT, dict(grace))
        assert again is first
        assert other is not first
    with db.write() as session:  # a later transaction: the waiting jobs are read back from the database
        enqueue(session, shop.id, EMAIL_UNSUBSCRIBE_JOB, RECEIVED_AT, dict(grace))
        enqueue(session, shop.id, "reconcile", RECEIVED_AT)
        enqueue(session, shop.id, "reconcile", RECEIVED_AT)

    jobs = [(j.kind, j.arguments) for j in db.all(Job, Job.kind != "install")]
    assert jobs == [(EMAIL_UNSUBSCRIBE_JOB, ada), (EMAIL_UNSUBSCRIBE_JOB, grace), ("reconcile", {})]


class Killed(BaseException):
    """What the worker sees of a crash in a job: nothing after it (the process is gone, the lease stays)."""


def test_a_job_that_kills_every_worker_running_it_is_parked_after_three_claims(
    runtime: Runtime, shop: Shop, db: Db
) -> None:
    assert shop.id is not None
    with db.write() as session:
        enqueue(session, shop.id, "deadly", RECEIVED_AT)
    runs = 0

    def deadly(_job: Job, _now: datetime) -> JobOutcome:
        nonlocal runs
        runs += 1
        raise Killed

    queue = JobRunner(runtime.engine, {"deadly": deadly}, lease=timedelta(minutes=15), max_claims=3)
    later = RECEIVED_AT
    for _crash in range(3):
        with pytest.raises(Killed):
            queue.run_due(later)
        later += timedelta(minutes=16)  # its lease ran out: the worker that held it is gone

    report = queue.run_due(later)

    assert (runs, report.parked) == (3, 1)
    job = db.one(Job, Job.kind == "deadly")
    assert (job.status, job.lease_until) == (JobStatus.PARKED, None)
    assert job.last_error == "claimed 3 times and never finished: its worker stopped each time"
    assert queue.run_due(later + timedelta(hours=1)).parked == 0  # and it stays parked
