"""Webhook subscriptions for core systems: manage, rotate secrets, read the log, replay."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlmodel import col, select

from hub import webhooks
from hub.api.dependencies import hub_of
from hub.auth import Principal, Role, require
from hub.store import OutboxRow, OutboxStatus, WebhookAttempt, WebhookSubscription

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

Manager = Annotated[Principal, Depends(require(Role.admin, Role.integrator))]
SubscriptionId = Annotated[int, Path(ge=1, le=2**62)]


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=8, max_length=2000)
    events: list[str] = Field(min_length=1, max_length=50, examples=[["ticket.*"]])
    description: str = Field(default="", max_length=500)
    clear_text: bool = Field(default=False, description="deliver message text unmasked")


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(default=None, min_length=8, max_length=2000)
    events: list[str] | None = Field(default=None, min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=500)
    clear_text: bool | None = None
    active: bool | None = None


class SubscriptionOut(BaseModel):
    id: int
    url: str
    events: list[str]
    description: str
    clear_text: bool
    active: bool
    disabled_reason: str | None
    consecutive_failures: int
    failing_since: datetime | None
    paused_until: datetime | None
    previous_secret_until: datetime | None
    created_at: datetime
    updated_at: datetime
    pending_deliveries: int = 0


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="shown only now; signs every delivery")


class RotateIn(BaseModel):
    overlap_hours: float = Field(default=24, ge=0, le=24 * 30)


class Rotated(BaseModel):
    secret: str
    previous_secret_until: datetime


class ReplayIn(BaseModel):
    since: AwareDatetime = Field(description="with its zone, e.g. 2026-11-23T00:00:00+08:00")


class AttemptOut(BaseModel):
    id: int
    outbox_id: int
    event_type: str
    attempted_at: datetime
    result: str
    status_code: int | None
    latency_ms: int
    response_excerpt: str | None


async def _checked(request: Request, url: str, events: list[str]) -> None:
    unknown = webhooks.check_patterns(events)
    if unknown:
        known = ", ".join(webhooks.EVENT_TYPES)
        raise HTTPException(422, f"no event matches {', '.join(unknown)}; events are: {known}")
    try:
        await webhooks.check_target(url, hub_of(request).settings.webhooks.allow_private_targets)
    except webhooks.TargetRefused as exc:
        raise HTTPException(422, f"url refused: {exc}") from None


def _may_see_clear_text(who: Principal, wanted: bool | None) -> None:
    # Unmasked message text is for endpoints an administrator vouches for, not any integrator.
    if wanted and who.role != Role.admin:
        raise HTTPException(403, "only an admin may give a subscription clear_text")


async def _get(session, subscription_id: int) -> WebhookSubscription:  # type: ignore[no-untyped-def]
    found = await session.get(WebhookSubscription, subscription_id)
    if found is None:
        raise HTTPException(404, f"no webhook subscription {subscription_id}")
    return found


def _out(subscription: WebhookSubscription, pending: int = 0) -> SubscriptionOut:
    return SubscriptionOut.model_validate(
        {**subscription.model_dump(), "pending_deliveries": pending}
    )


@router.post(
    "",
    status_code=201,
    response_model=SubscriptionCreated,
    summary="Subscribe an endpoint to ticket events; the secret is shown once",
)
async def create(body: SubscriptionIn, request: Request, who: Manager) -> SubscriptionCreated:
    _may_see_clear_text(who, body.clear_text)
    await _checked(request, body.url, body.events)
    hub = hub_of(request)
    now = hub.clock.now()
    subscription = webhooks.new_subscription(
        body.url, body.events, body.description, body.clear_text, now
    )
    async with hub.sessions() as session, session.begin():
        session.add(subscription)
    return SubscriptionCreated.model_validate(
        {**subscription.model_dump(), "pending_deliveries": 0}
    )


@router.get("", response_model=list[SubscriptionOut], summary="All subscriptions")
async def list_all(request: Request, _: Manager) -> list[SubscriptionOut]:
    async with hub_of(request).reads() as session:
        rows = (
            await session.exec(select(WebhookSubscription).order_by(col(WebhookSubscription.id)))
        ).all()
    return [_out(r) for r in rows]


@router.get("/{subscription_id}", response_model=SubscriptionOut)
async def read(subscription_id: SubscriptionId, request: Request, _: Manager) -> SubscriptionOut:
    async with hub_of(request).reads() as session:
        subscription = await _get(session, subscription_id)
        pending = len(
            (
                await session.exec(
                    select(OutboxRow.id)
                    .where(OutboxRow.target == webhooks.target_of(subscription_id))
                    .where(OutboxRow.status == OutboxStatus.pending)
                )
            ).all()
        )
    return _out(subscription, pending)


@router.patch(
    "/{subscription_id}",
    response_model=SubscriptionOut,
    summary="Change a subscription; re-activating clears the failure record",
)
async def update(
    subscription_id: SubscriptionId, body: SubscriptionPatch, request: Request, who: Manager
) -> SubscriptionOut:
    hub = hub_of(request)
    async with hub.reads() as session:
        current = await _get(session, subscription_id)
    _may_see_clear_text(who, body.clear_text or (current.clear_text and body.url is not None))
    # Checked outside the write transaction: it resolves the host.
    await _checked(request, body.url or current.url, body.events or current.events)
    async with hub.sessions() as session, session.begin():
        subscription = await _get(session, subscription_id)
        for field in ("url", "events", "description", "clear_text"):
            value = getattr(body, field)
            if value is not None:
                setattr(subscription, field, value)
        if body.active is not None:
            subscription.active = body.active
            if body.active:
                subscription.disabled_reason = None
                subscription.consecutive_failures = 0
                subscription.failing_since = None
                subscription.paused_until = None
        subscription.updated_at = hub.clock.now()
        session.add(subscription)
    hub.wake.set()
    return _out(subscription)


@router.post(
    "/{subscription_id}/rotate",
    response_model=Rotated,
    summary="New secret; the old one keeps signing alongside it for the overlap",
)
async def rotate(
    subscription_id: SubscriptionId, body: RotateIn, request: Request, _: Manager
) -> Rotated:
    hub = hub_of(request)
    now = hub.clock.now()
    async with hub.sessions() as session, session.begin():
        subscription = await _get(session, subscription_id)
        try:
            webhooks.rotate_secret(subscription, now, body.overlap_hours)
        except webhooks.RotationOverlap as exc:
            raise HTTPException(409, str(exc)) from None
        session.add(subscription)
    return Rotated(
        secret=subscription.secret, previous_secret_until=subscription.previous_secret_until
    )


@router.delete(
    "/{subscription_id}",
    status_code=204,
    summary="Remove a subscription; its undelivered events are dead-lettered",
)
async def delete(subscription_id: SubscriptionId, request: Request, _: Manager) -> None:
    hub = hub_of(request)
    async with hub.sessions() as session, session.begin():
        subscription = await _get(session, subscription_id)
        rows = (
            await session.exec(
                select(OutboxRow)
                .where(OutboxRow.target == webhooks.target_of(subscription_id))
                .where(OutboxRow.status == OutboxStatus.pending)
            )
        ).all()
        for row in rows:
            row.status = OutboxStatus.dead
            row.last_error = "the subscription was deleted"
            session.add(row)
        await session.delete(subscription)


@router.get(
    "/{subscription_id}/attempts",
    response_model=list[AttemptOut],
    summary="The delivery log: every attempt, newest first",
)
async def attempts(
    subscription_id: SubscriptionId,
    request: Request,
    _: Manager,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AttemptOut]:
    async with hub_of(request).reads() as session:
        await _get(session, subscription_id)
        rows = (
            await session.exec(
                select(WebhookAttempt)
                .where(WebhookAttempt.subscription_id == subscription_id)
                .order_by(col(WebhookAttempt.id).desc())
                .limit(limit)
            )
        ).all()
    return [AttemptOut.model_validate(r, from_attributes=True) for r in rows]


@router.post("/{subscription_id}/replay", summary="Deliver again everything since a time")
async def replay(
    subscription_id: SubscriptionId, body: ReplayIn, request: Request, _: Manager
) -> dict[str, int]:
    hub = hub_of(request)
    async with hub.sessions() as session, session.begin():
        await _get(session, subscription_id)
        count = await webhooks.requeue_since(session, subscription_id, body.since, hub.clock.now())
    hub.wake.set()
    return {"requeued": count}
