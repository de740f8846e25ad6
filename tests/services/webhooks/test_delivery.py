"""Webhook delivery against a real HTTP receiver on loopback: signing, retries, leases, SSRF rules."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from openfish.config import WebhookSettings
from openfish.services.webhooks.delivery import GAVE_UP, WebhookService
from openfish.services.webhooks.rules import backoff_seconds, pinned_request, sign, verify
from openfish.store.models import WebhookDelivery
from tests.conftest import Harness, Receiver

EVENT = {"type": "job.succeeded", "data": {"jobId": "job_1", "status": "succeeded"}}


class FakeClock:
    """A clock the test moves by hand.

    It starts far ahead, so the delivery loop the app itself runs (on the real clock, against the
    same database) never finds these tests' deliveries due.
    """

    def __init__(self) -> None:
        self.now = datetime(2100, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_service(harness: Harness, clock: FakeClock) -> AsyncIterator[Callable[..., WebhookService]]:
    """Services on the harness database; keyword arguments override the webhook settings."""
    made: list[WebhookService] = []

    def build(**rules: Any) -> WebhookService:
        webhooks = WebhookSettings(**{"allow_http": True, "allow_private_targets": True, **rules})
        settings = harness.services.settings.model_copy(update={"webhooks": webhooks})
        service = WebhookService(harness.services.db, settings, clock=clock)
        made.append(service)
        return service

    yield build
    for service in made:
        await service.aclose()


async def account_with_webhook(harness: Harness, url: str | None) -> str:
    caller = await harness.new_caller()
    await harness.services.accounts.set_webhook(caller.account_id, url)
    return caller.account_id


async def deliveries(harness: Harness) -> list[WebhookDelivery]:
    async with harness.services.db.session() as session:
        rows = await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))
        return list(rows.all())


async def test_an_event_is_delivered_once_and_signed(
    harness: Harness, receiver: Receiver, make_service: Callable[..., WebhookService], clock: FakeClock
) -> None:
    service = make_service()
    account_id = await account_with_webhook(harness, receiver.url())
    assert await service.enqueue(account_id, "job_1:succeeded", EVENT)

    assert await service.deliver_due() == 1
    assert await service.deliver_due() == 0  # delivered: nothing is due any more

    [request] = receiver.requests
    assert (request.method, request.target) == ("POST", "/hook")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "openfish-webhooks/1"
    assert request.headers["x-openfish-event-id"] == "job_1:succeeded"
    event = json.loads(request.body)
    assert event == {
        "id": "job_1:succeeded",
        "type": "job.succeeded",
        "createdAt": "2100-01-01T12:00:00Z",
    } | {"data": EVENT["data"]}
    assert b" " not in request.body  # compact JSON

    secret = await service.secret_for(account_id)
    assert secret.startswith("whsec_")
    header, now = request.headers["x-openfish-signature"], clock().timestamp()
    assert header.startswith(f"t={int(now)},v1=")
    assert verify(secret, header, request.body, now=now)
    assert not verify(secret, header, request.body.replace(b"succeeded", b"failed"), now=now)
    assert not verify("whsec_other", header, request.body, now=now)
    assert not verify(secret, header.replace("v1=", "v1=0"), request.body, now=now)
    assert not verify(secret, header, request.body, now=now + 301)  # too old
    assert not verify(secret, "v1=abc", request.body, now=now)

    [row] = await deliveries(harness)
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == ("delivered", 1, 200, None)
    assert row.delivered_at == clock()


async def test_the_signing_secret_is_made_once_even_by_concurrent_callers(
    harness: Harness, make_service: Callable[..., WebhookService]
) -> None:
    first, second = make_service(), make_service()
    account_id = await account_with_webhook(harness, None)
    secrets = await asyncio.gather(*(s.secret_for(account_id) for s in (first, second, first, second)))
    assert len(set(secrets)) == 1
    assert (await harness.services.accounts.get_account(account_id)).webhook_secret == secrets[0]


def test_sign_and_verify_agree_on_text_and_bytes() -> None:
    header = sign("whsec_k", 1_700_000_000, '{"a":"é"}')
    assert header == sign("whsec_k", 1_700_000_000, '{"a":"é"}'.encode())
    assert verify("whsec_k", header, '{"a":"é"}', now=1_700_000_100)
    assert not verify("whsec_k", header, '{"a":"é"}', tolerance_seconds=60, now=1_700_000_100)
    assert not verify("whsec_k", "t=²,v1=00", "{}", now=0)


async def test_a_repeated_event_id_is_queued_once(
    harness: Harness, receiver: Receiver, make_service: Callable[..., WebhookService]
) -> None:
    service = make_service()
    account_id = await account_with_webhook(harness, receiver.url())
    results = [await service.enqueue(account_id, "job_2:succeeded", EVENT) for _ in range(3)]
    async with harness.services.db.transaction() as session:
        results.append(await service.enqueue(account_id, "job_2:succeeded", EVENT, session=session))
    assert results == [True, False, False, False]
    assert await service.deliver_due() == 1
    assert len(receiver.requests) == 1
    assert len(await deliveries(harness)) == 1


async def test_an_event_joins_the_callers_transaction(
    harness: Harness, receiver: Receiver, make_service: Callable[..., WebhookService]
) -> None:
    service = make_service()
    account_id = await account_with_webhook(harness, receiver.url())

    async def enqueue_then_fail() -> None:
        async with harness.services.db.transaction() as session:
            assert await service.enqueue(account_id, "job_3:failed", EVENT, session=session)
            raise RuntimeError("the job's own update failed")

    with pytest.raises(RuntimeError):
        await enqueue_then_fail()
    assert await deliveries(harness) == []
    assert await service.enqueue(account_id, "job_3:failed", EVENT)  # rolled back, so not a repeat


async def test_a_failed_attempt_is_retried_after_the_backoff(
    harness: Harness, receiver: Receiver, make_service: Callable[..., WebhookService], clock: FakeClock
) -> None:
    service = make_service()
    receiver.statuses = [500, 200]
    account_id = await account_with_webhook(harness, receiver.url())
    await service.enqueue(account_id, "job_4:succeeded", EVENT)
    start = clock()

    assert await service.deliver_due() == 1
    [row] = await deliveries(harness)
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 500)
    assert (row.last_error or "").startswith("HTTP 500")
    assert start + timedelta(seconds=9) <= row.next_attempt_at <= start + timedelta(seconds=11)
    assert row.lease_expires_at is None

    clock.advance(8)
    assert await service.deliver_due() == 0  # not due yet
    clock.advance(4)
    assert await service.deliver_due() == 1
    [row] = await deliveries(harness)
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == ("delivered", 2, 200, None)
    assert [r.headers["x-openfish-event-id"] for r in receiver.requests] == ["job_4:succeeded"] * 2


async def test_a_delivery_fails_after_max_attempts_and_redirects_are_not_followed(
    harness: Harness, receiver: Receiver, make_service: Callable[..., WebhookService], clock: FakeClock
) -> None:
    service = make_service(max_attempts=3)
    receiver.statuses = [503, 302, 500, 200]
    account_id = await account_with_webhook(harness, receiver.url())
    await service.enqueue(account_id, "job_5:failed", EVENT)
    codes = []
    for _ in range(4):
        await service.deliver_due()
        codes.append((await deliveries(harness))[0].last_status_code)
        clock.advance(3600)
    [row] = await deliveries(harness)
    assert codes == [503, 302, 500, 500]
    assert (row.status, row.attempts) == ("failed", 3)
    assert len(receiver.requests) == 3  # the redirect target was never asked


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    for attempts, expected in [(1, 10), (2, 20), (3, 40), (7, 640), (12, 3600), (500, 3600)]:
        delay = backoff_seconds(attempts, 10, 3600)
        assert expected * 0.9 <= delay <= expected * 1.1


async def test_loopback_targets_are_refused_unless_allowed(
    harness: Harness, receiver: Receiver, make_service: Callable[..., WebhookService]
) -> None:
    service = make_service(allow_private_targets=False)
    account_id = await account_with_webhook(harness, receiver.url())
    await service.enqueue(account_id, "job_6:succeeded", EVENT)
    assert await service.deliver_due() == 1
    [row] = await deliveries(harness)
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 1, None)
    assert "public host" in (row.last_error or "")
    assert receiver.requests == []


async def test_a_name_resolving_to_any_private_address_is_refused(
    harness: Harness,
    receiver: Receiver,
    make_service: Callable[..., WebhookService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.example.com":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    service = make_service(allow_private_targets=False)
    account_id = await account_with_webhook(harness, receiver.url("hooks.example.com"))
    await service.enqueue(account_id, "job_7:succeeded", EVENT)
    assert await service.deliver_due() == 1
    [row] = await deliveries(harness)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error == "refused: hooks.example.com resolves to non-public 127.0.0.1"
    assert receiver.requests == []


async def test_the_request_goes_to_the_checked_address_with_the_original_host(
    harness: Harness,
    receiver: Receiver,
    make_service: Callable[..., WebhookService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "10.9.9.9"])  # a second lookup would be "rebound" elsewhere

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    service = make_service()
    account_id = await account_with_webhook(harness, receiver.url("hooks.example.com"))
    await service.enqueue(account_id, "job_8:succeeded", EVENT)
    assert await service.deliver_due() == 1
    [request] = receiver.requests
    assert request.headers["host"] == f"hooks.example.com:{receiver.port}"
    assert (await deliveries(harness))[0].status == "delivered"


def test_pinned_https_requests_keep_the_hostname_for_tls() -> None:
    target, headers, extensions = pinned_request("https://hooks.example.com/a?b=1", "93.184.216.34")
    assert str(target) == "https://93.184.216.34/a?b=1"
    assert headers == {"Host": "hooks.example.com"}
    assert extensions == {"sni_hostname": "hooks.example.com"}
    target, headers, extensions = pinned_request("https://bücher.example:8443/", "2001:db8::1")
    assert str(target) == "https://[2001:db8::1]:8443/"
    assert headers == {"Host": "xn--bcher-kva.example:8443"}
    assert extensions == {"sni_hostname": "xn--bcher-kva.example"}
    assert pinned_request("https://93.184.216.34/", "93.184.216.34")[2] == {}


async def test_concurrent_passes_never_send_a_delivery_twice(
    harness: Harness, receiver: Receiver, make_service: Callable[..., WebhookService]
) -> None:
    receiver.delay = 0.05
    first, second = make_service(), make_service()
    account_id = await account_with_webhook(harness, receiver.url())
    for n in range(6):
        await first.enqueue(account_id, f"job_c{n}:succeeded", EVENT)
    counts = await asyncio.gather(*(s.deliver_due(limit=4) for s in (first, second, first, second)))
    assert sum(counts) == 6
    sent = sorted(r.headers["x-openfish-event-id"] for r in receiver.requests)
    assert sent == sorted(f"job_c{n}:succeeded" for n in range(6))
    assert {(row.status, row.attempts) for row in await deliveries(harness)} == {("delivered", 1)}


async def test_a_delivery_in_flight_is_leased_to_its_sender(
    harness: Harness, receiver: Receiver, make_service: Callable[..., WebhookService], clock: FakeClock
) -> None:
    receiver.delay = 0.3
    first, second = make_service(), make_service()
    account_id = await account_with_webhook(harness, receiver.url())
    await first.enqueue(account_id, "job_9:succeeded", EVENT)
    in_flight = asyncio.create_task(first.deliver_due())
    await asyncio.wait_for(receiver.arrived.wait(), 5)
    clock.advance(30)  # still inside the lease (timeout + 60 s)
    assert await second.deliver_due() == 0
    assert await in_flight == 1
    assert len(receiver.requests) == 1
    assert (await deliveries(harness))[0].status == "delivered"


async def test_accounts_without_a_webhook_get_nothing_queued(
    harness: Harness, make_service: Callable[..., WebhookService]
) -> None:
    service = make_service()
    account_id = await account_with_webhook(harness, None)
    assert not await service.enqueue(account_id, "job_10:succeeded", EVENT)
    assert await deliveries(harness) == []
    with pytest.raises(ValueError, match="type"):
        await service.enqueue(account_id, "job_10:succeeded", {"data": {}})


async def test_run_delivers_until_stopped_and_survives_a_failing_pass(
    harness: Harness,
    receiver: Receiver,
    make_service: Callable[..., WebhookService],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = make_service()
    real = service.deliver_due
    calls = 0

    async def flaky(limit: int = 10) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database went away")
        return await real(limit)

    monkeypatch.setattr(service, "deliver_due", flaky)
    account_id = await account_with_webhook(harness, receiver.url())
    await service.enqueue(account_id, "job_11:succeeded", EVENT)
    stop = asyncio.Event()
    with caplog.at_level(logging.ERROR, logger="openfish.webhooks"):
        runner = asyncio.create_task(service.run(stop, interval=0.01))
        await asyncio.wait_for(receiver.arrived.wait(), 5)
        stop.set()
        await asyncio.wait_for(runner, 5)
    assert "webhook delivery pass failed" in caplog.text
    assert len(receiver.requests) == 1


async def test_a_sender_whose_lease_expired_does_not_record_over_the_new_one(
    harness: Harness,
    receiver: Receiver,
    make_service: Callable[..., WebhookService],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.delay, receiver.statuses = 0.3, [500, 200]
    stale, fresh = make_service(), make_service()
    account_id = await account_with_webhook(harness, receiver.url())
    await stale.enqueue(account_id, "job_12:succeeded", EVENT)
    with caplog.at_level(logging.WARNING, logger="openfish.webhooks"):
        in_flight = asyncio.create_task(stale.deliver_due())
        await asyncio.wait_for(receiver.arrived.wait(), 5)
        clock.advance(80)  # past the lease: the delivery may be taken over
        assert await fresh.deliver_due() == 1
        assert await in_flight == 1
    assert "taken over" in caplog.text
    [row] = await deliveries(harness)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 2, 200)
    assert len(receiver.requests) == 2


@pytest.mark.parametrize(
    ("host", "allow_private_targets", "error"),
    [
        # Stored before the validator read IPv4 shorthand: now refused for what they are.
        ("0177.0.0.1", False, "refused: webhookUrl must point at a public host"),
        ("127.1", False, "refused: webhookUrl must point at a public host"),
        ("127.0.1", False, "refused: webhookUrl must point at a public host"),
        ("0x7f.0.0.1", False, "refused: webhookUrl must point at a public host"),
        ("0177.1", False, "refused: webhookUrl must point at a public host"),
        ("2130706433", False, "refused: webhookUrl must point at a public host"),
        ("0x7f000001", False, "refused: webhookUrl must point at a public host"),
        ("999.1", False, "refused: webhookUrl has an invalid host"),
        # Hosts httpx cannot parse can never be delivered to, even where private targets are allowed.
        ("0177.0.0.1", True, "refused: webhookUrl is not a valid URL"),
        ("010.8.8.8", True, "refused: webhookUrl is not a valid URL"),
    ],
)
async def test_a_stored_url_that_is_no_longer_valid_fails_at_once_and_for_good(
    harness: Harness,
    receiver: Receiver,
    make_service: Callable[..., WebhookService],
    clock: FakeClock,
    host: str,
    allow_private_targets: bool,
    error: str,
) -> None:
    service = make_service(allow_private_targets=allow_private_targets)
    # set_webhook stores the URL unchecked, as the profile API did before it knew shorthand.
    account_id = await account_with_webhook(harness, receiver.url(host))
    assert await service.enqueue(account_id, "job_13:succeeded", EVENT)

    assert await service.deliver_due() == 1

    [row] = await deliveries(harness)
    assert (row.status, row.attempts, row.last_status_code, row.lease_expires_at) == ("failed", 1, None, None)
    assert (row.last_error or "").startswith(error)
    clock.advance(7 * 24 * 3600)
    assert await service.deliver_due() == 0  # never claimed again
    assert receiver.requests == []


async def test_shorthand_for_loopback_is_delivered_where_private_targets_are_allowed(
    harness: Harness, receiver: Receiver, make_service: Callable[..., WebhookService]
) -> None:
    service = make_service(allow_private_targets=True)
    account_id = await account_with_webhook(harness, receiver.url("127.1"))
    await service.enqueue(account_id, "job_14:succeeded", EVENT)
    assert await service.deliver_due() == 1
    assert (await deliveries(harness))[0].status == "delivered"
    assert len(receiver.requests) == 1


def _fail_post(service: WebhookService, monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    async def post(*args: Any, **kwargs: Any) -> Any:
        raise exc

    monkeypatch.setattr(service._sender, "_post", post)


def _fail_resolver(service: WebhookService, monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        raise exc

    monkeypatch.setattr("openfish.services.runtime.net_guard.resolve", resolve)


@pytest.mark.parametrize("inject", [_fail_post, _fail_resolver], ids=["client", "resolver"])
async def test_an_unexpected_error_is_a_failed_attempt_until_the_delivery_fails(
    harness: Harness,
    receiver: Receiver,
    make_service: Callable[..., WebhookService],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    inject: Callable[[WebhookService, pytest.MonkeyPatch, BaseException], None],
) -> None:
    service = make_service(max_attempts=3)
    inject(service, monkeypatch, RuntimeError("the client broke"))
    account_id = await account_with_webhook(harness, receiver.url())
    await service.enqueue(account_id, "job_15:succeeded", EVENT)

    with caplog.at_level(logging.INFO, logger="openfish.webhooks"):
        for attempt in (1, 2):
            assert await service.deliver_due() == 1
            [row] = await deliveries(harness)
            assert (row.status, row.attempts, row.last_status_code) == ("pending", attempt, None)
            assert row.last_error == "RuntimeError: the client broke"
            assert row.lease_expires_at is None
            assert row.next_attempt_at > clock()  # retried after the backoff, not at once
            assert await service.deliver_due() == 0
            clock.advance(3600)
        assert await service.deliver_due() == 1

    [row] = await deliveries(harness)
    assert (row.status, row.attempts, row.last_error) == ("failed", 3, "RuntimeError: the client broke")
    clock.advance(7 * 24 * 3600)
    assert await service.deliver_due() == 0  # never claimed again
    assert receiver.requests == []
    failures = [r for r in caplog.records if r.exc_info is not None]
    assert len(failures) == 3  # each attempt logged once, with its traceback
    assert all(r.levelno == logging.WARNING and "failed unexpectedly" in r.message for r in failures)
    assert "attempt aborted" not in caplog.text


async def test_an_unexpected_error_is_stored_short_and_without_the_signing_secret(
    harness: Harness,
    receiver: Receiver,
    make_service: Callable[..., WebhookService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = make_service()
    account_id = await account_with_webhook(harness, receiver.url())
    secret = await service.secret_for(account_id)
    _fail_post(service, monkeypatch, ValueError(f"signed with {secret} " + "x" * 1000))
    await service.enqueue(account_id, "job_16:succeeded", EVENT)

    assert await service.deliver_due() == 1

    [row] = await deliveries(harness)
    assert row.status == "pending"
    error = row.last_error or ""
    assert error.startswith("ValueError: signed with [secret] xxx")
    assert secret not in error
    assert len(error) == 500


async def test_a_cancelled_attempt_is_not_recorded_as_a_failure(
    harness: Harness,
    receiver: Receiver,
    make_service: Callable[..., WebhookService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = make_service()
    _fail_post(service, monkeypatch, asyncio.CancelledError())
    account_id = await account_with_webhook(harness, receiver.url())
    await service.enqueue(account_id, "job_17:succeeded", EVENT)

    assert await service.deliver_due() == 1

    # Cancellation (a shutdown) is not swallowed: the claim keeps its lease and is taken over later.
    [row] = await deliveries(harness)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, None)
    assert row.lease_expires_at is not None


async def test_a_delivery_whose_senders_keep_dying_ends_failed(
    harness: Harness, receiver: Receiver, make_service: Callable[..., WebhookService], clock: FakeClock
) -> None:
    # A sender that dies mid-attempt records nothing; its claim still used an attempt. After the
    # last one's lease runs out the delivery is failed, never claimed again.
    service = make_service(max_attempts=3)
    account_id = await account_with_webhook(harness, receiver.url())
    await service.enqueue(account_id, "job_18:succeeded", EVENT)
    for attempt in (1, 2, 3):
        claims = await service._claim(10)
        assert [claim.attempts for claim in claims] == [attempt]
        clock.advance(3600)  # the sender is gone; its lease runs out
    assert await service.deliver_due() == 0
    [row] = await deliveries(harness)
    assert (row.status, row.attempts, row.last_error) == ("failed", 3, GAVE_UP)
    assert receiver.requests == []
