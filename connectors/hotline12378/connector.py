"""The 12378 regulator-transfer channel: transfers in (push or sheet), result feedback out.

A transfer is stored under its ``transfer_id``, whichever way it came: the regulator's retry,
a batch that repeats yesterday's transfers, and a sheet loaded after the push all find the
first receipt and change nothing. The complainant is not on the other end of this channel (the
regulator is), so the only message that goes out is the result feedback to the branch that
transferred the case.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from connectors.hotline12378 import sheet
from connectors.hotline12378.config import BranchConfig, Hotline12378Config
from connectors.hotline12378.models import (
    TRANSFER_TYPE_ZH,
    Batch,
    FeedbackRecord,
    Transfer,
    end_of_day,
    is_resident_id,
)
from hub.sdk import (
    Attachment,
    BatchImporter,
    BatchRow,
    BodyTooLarge,
    Capabilities,
    ChannelConnector,
    ColumnMapping,
    DeliveryResult,
    Health,
    Identity,
    InboundEnvelope,
    InboundMessage,
    IngestResult,
    OutboundMessage,
    RowRejected,
    SignatureError,
    error_response,
    post_json,
    read_limited_body,
    receipt_response,
    signed_headers,
    validation_errors,
    verify_signer,
)

FEEDBACK_PURPOSE = "regulator_feedback"
TRANSFER_REF = "hotline12378.transfer"
CALL_REF = "hotline12378.call"
SUBJECT_LENGTH = 80


class Hotline12378Connector(ChannelConnector[Hotline12378Config], BatchImporter):
    name = "hotline12378"
    sdk_version = "1.1"
    Config = Hotline12378Config
    capabilities = Capabilities(
        inbound=True,
        outbound=True,
        message_kinds=("complaint", "regulator_feedback"),
        attachments=True,
        max_attachment_bytes=5 * 1024 * 1024,
        customer_messages=False,
    )
    batch_fields = sheet.FIELDS

    # --- push -----------------------------------------------------------------------------

    def router(self) -> APIRouter:
        router = APIRouter(tags=["channel: hotline12378"])
        router.add_api_route(
            "/transfers",
            self._receive,
            methods=["POST"],
            status_code=202,
            summary='The regulator transfers complaints (one, or {"transfers": [...]} up to 500)',
            responses={
                200: {"description": "Every transfer_id was stored before: the first receipts"},
                401: {"description": "The signature matches no configured branch; nothing stored"},
                413: {"description": "Body over max_body_bytes; nothing stored"},
                422: {"description": "Validation failed; each bad field named; nothing stored"},
                503: {"description": "Storage failed; retry (stored transfers answer 200)"},
            },
        )
        return router

    def _branch_of(self, request: Request, body: bytes) -> tuple[str, str]:
        """The branch whose secret signed the request, and the webhook-id."""
        signers = {key: branch.push_secrets for key, branch in self.config.branches.items()}
        return verify_signer(
            signers,
            request.headers,
            body,
            self.context.clock.now(),
            self.config.timestamp_tolerance_seconds,
            what="branch",
        )

    async def _receive(self, request: Request) -> Response:
        try:
            body = await read_limited_body(request, self.config.max_body_bytes)
        except BodyTooLarge as exc:
            return error_response(413, str(exc))
        try:
            branch, msg_id = self._branch_of(request, body)
        except SignatureError as exc:
            return error_response(401, f"signature refused: {exc}")
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            return error_response(
                422, "invalid transfer", [{"field": "body", "message": "not valid JSON (UTF-8)"}]
            )
        batched = isinstance(document, dict) and "transfers" in document
        items = document.get("transfers") if batched else [document]
        problems = self._check(document, batched)
        if problems:
            return error_response(
                422, "invalid transfers" if batched else "invalid transfer", problems
            )
        assert isinstance(items, list)
        metadata = {"branch": branch, "source": "push", "webhook_id": msg_id}
        headers = {"webhook-id": msg_id, "webhook-timestamp": request.headers["webhook-timestamp"]}
        # A single push keeps its exact bytes; a batch member is kept as its own JSON object,
        # so each transfer parses alone.
        envelopes = [
            InboundEnvelope(
                channel=self.name,
                external_id=str(item["transfer_id"]).strip(),
                body=json.dumps(item, ensure_ascii=False).encode() if batched else body,
                content_type="application/json",
                received_at=self.context.clock.now(),
                headers=headers,
                metadata=metadata,
            )
            for item in items
        ]
        try:
            # Concurrent accepts share the envelope store's group commit: 500 transfers cost
            # a couple of transactions, not 500.
            results = await asyncio.gather(*(self.context.ingest.accept(e) for e in envelopes))
        except Exception:
            return error_response(
                503,
                "the transfers could not all be stored; send the same request again (transfers "
                "already stored are answered as duplicates)",
            )
        if not batched:
            return receipt_response(
                results[0].receipt, results[0].created, transfer_id=envelopes[0].external_id
            )
        return _batch_response(envelopes, results)

    def _check(self, document: Any, batched: bool) -> list[dict[str, Any]]:
        """Every problem in the body, each naming its field (``transfers.3.complainant.phone``
        in a batch). A batch is all or nothing: one bad transfer refuses the request, because
        the regulator resends the batch as a whole and must learn which transfers to fix."""
        if not isinstance(document, dict):
            return [{"field": "body", "message": 'a transfer object or {"transfers": [...]}'}]
        items = document["transfers"] if batched else None
        if isinstance(items, list) and len(items) > self.config.max_batch:
            # Refused before validating thousands of transfers one by one.
            return [
                {
                    "field": "transfers",
                    "message": f"{len(items)} transfers; at most {self.config.max_batch} "
                    "per request",
                }
            ]
        context = {
            "now": self.context.clock.now(),
            "max_attachment_bytes": self.config.max_attachment_bytes,
        }
        problems: list[dict[str, Any]] = []
        try:
            (Batch if batched else Transfer).model_validate(document, context=context)
        except ValidationError as exc:
            problems = validation_errors(exc)
        if isinstance(items, list):
            problems.extend(_repeated_ids(items))
        return problems

    # --- batch import ---------------------------------------------------------------------

    def batch_mapping(self) -> ColumnMapping:
        return ColumnMapping(
            columns=dict(self.config.import_columns), defaults=dict(self.config.import_defaults)
        )

    def batch_envelope(self, row: BatchRow) -> InboundEnvelope:
        transfer, unreadable = sheet.transfer_from_row(row.values)
        problems = [f"{sheet.describe(name)}: {why}" for name, why in unreadable.items()]
        branch_name = str(transfer.get("regulator_branch", ""))
        branch = self.config.branch_named(branch_name) if branch_name else None
        if branch_name and branch is None:
            known = "; ".join(f"{k}: {b.name}" for k, b in sorted(self.config.branches.items()))
            problems.append(
                f"{sheet.describe('regulator_branch')}: {branch_name!r} matches no configured "
                f"branch ({known}); add it as an alias or set it in the mapping's defaults"
            )
        try:
            validated = Transfer.model_validate(
                transfer,
                context={
                    "now": self.context.clock.now(),
                    "max_attachment_bytes": self.config.max_attachment_bytes,
                },
            )
        except ValidationError as exc:
            problems.extend(
                f"{sheet.describe(e['field'])}: {e['message']}"
                for e in validation_errors(exc)
                if e["field"] not in unreadable  # already said why it is missing
            )
        if problems:
            raise RowRejected(*problems)
        body = validated.model_dump_json(exclude_none=True).encode()
        return InboundEnvelope(
            channel=self.name,
            external_id=validated.transfer_id,
            body=body,
            content_type="application/json",
            received_at=self.context.clock.now(),
            metadata={"branch": branch, "source": "import", "file": row.source, "row": row.number},
        )

    # --- parse ----------------------------------------------------------------------------

    def parse(self, envelope: InboundEnvelope) -> InboundMessage:
        transfer = Transfer.model_validate_json(envelope.body)
        complainant = transfer.complainant
        # The regulator took these down and signed the transfer: the phone is verified, so the
        # complainant's transfers find each other. An id number links too, but only one whose
        # check digit holds; a mistyped one must never join two people.
        identities: list[Identity] = []
        if complainant.id_number:
            identities.append(
                Identity("id_number", complainant.id_number, is_resident_id(complainant.id_number))
            )
        identities.append(Identity("phone", complainant.phone, verified=True))
        flags = {"regulator_transfer"}
        references = [(TRANSFER_REF, transfer.transfer_id)]
        if transfer.transfer_type == "hot_transfer":
            flags.add("hot_transfer")
        if transfer.call_id:
            references.append((CALL_REF, transfer.call_id))
        first_line = transfer.summary.strip().splitlines()[0]
        return InboundMessage(
            text=_text(transfer),
            identities=tuple(identities),
            sent_at=transfer.transferred_at,
            reply_address={
                "branch": envelope.metadata.get("branch"),
                "transfer_id": transfer.transfer_id,
            },
            display_name=complainant.name,
            subject=f"12378 {first_line}"[:SUBJECT_LENGTH],
            attachments=tuple(
                Attachment(a.name, a.content_type, a.decoded())
                for a in transfer.attachments
                if a.data is not None
            ),
            kind_hint="complaint",
            received_at=transfer.received_at,
            deadline=end_of_day(transfer.deadline) if transfer.deadline else None,
            flags=frozenset(flags),
            customer_tags=tuple(complainant.tags),
            category_codes=transfer.category.codes() if transfer.category else {},
            references=tuple(references),
        )

    # --- feedback -------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        if message.purpose != FEEDBACK_PURPOSE:
            return DeliveryResult.give_up(
                f"the 12378 channel reaches the regulator, not the complainant: a "
                f"{message.purpose!r} message cannot be sent through it; contact the "
                "complainant by phone and record the contact on the ticket"
            )
        key = message.recipient.get("branch")
        branch = self.config.branches.get(str(key)) if key else None
        if branch is None:
            return DeliveryResult.give_up(
                f"no branch {key!r} in [connectors.hotline12378.branches]; restore it and "
                "replay this delivery"
            )
        try:
            record = FeedbackRecord.model_validate(
                {
                    "transfer_id": message.recipient.get("transfer_id"),
                    **message.metadata,
                    "ticket_number": message.ticket_number,
                }
            )
        except ValidationError as exc:
            fields = "; ".join(f"{e['field']}: {e['message']}" for e in validation_errors(exc))
            return DeliveryResult.give_up(f"the feedback record is incomplete: {fields}")
        return await self._post(branch, record, message.idempotency_key)

    async def _post(
        self, branch: BranchConfig, record: FeedbackRecord, idempotency_key: str
    ) -> DeliveryResult:
        body = record.model_dump_json().encode()
        headers = signed_headers(
            branch.signing_secret, idempotency_key, body, self.context.clock.now()
        )
        return await post_json(self.context.http, str(branch.feedback_url), body, headers)

    async def health(self) -> Health:
        checks = await asyncio.gather(
            *(self._reachable(key, b) for key, b in sorted(self.config.branches.items()))
        )
        failing = [detail for ok, detail in checks if not ok]
        if failing:
            return Health(ok=False, detail="; ".join(failing))
        return Health(ok=True, detail=f"{len(checks)} branch feedback endpoint(s) answer")

    async def _reachable(self, key: str, branch: BranchConfig) -> tuple[bool, str]:
        try:
            response = await self.context.http.head(str(branch.feedback_url))
        except Exception as exc:
            return False, f"branch {key}: feedback_url unreachable: {type(exc).__name__}"
        if response.status_code >= 500:
            return False, f"branch {key}: feedback_url answered {response.status_code}"
        return True, f"branch {key}: {response.status_code}"


def _text(transfer: Transfer) -> str:
    """The transfer as the agent reads it on the ticket."""
    lines = [
        f"【12378 {TRANSFER_TYPE_ZH[transfer.transfer_type]}】{transfer.transfer_id}",
        f"监管机构：{transfer.regulator_branch}",
    ]
    institution = transfer.institution
    lines.append(
        f"被投诉机构：{institution.name}" + (f"（{institution.code}）" if institution.code else "")
    )
    if transfer.call_id:
        lines.append(f"呼叫编号：{transfer.call_id}")
    lines.append(f"投诉事项：{transfer.summary}")
    if transfer.demands:
        lines.append(f"诉求：{transfer.demands}")
    linked = [a for a in transfer.attachments if a.url is not None]
    if linked:
        # Not fetched: the hub does not follow links a push names (they can point anywhere),
        # and parse must not touch the network. The agent fetches them from the platform.
        lines.append("附件（未随转办传送，请到监管平台调取）：")
        lines.extend(f"- {a.name}（{a.content_type}）{a.url}" for a in linked)
    return "\n".join(lines)


def _repeated_ids(items: list[Any]) -> list[dict[str, Any]]:
    """A transfer_id twice in one batch: the second would silently be a duplicate of the first,
    which is the peer's mistake to hear about, not ours to guess at."""
    problems = []
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("transfer_id"), str):
            continue
        transfer_id = item["transfer_id"].strip()
        if transfer_id in first:
            problems.append(
                {
                    "field": f"transfers.{index}.transfer_id",
                    "message": f"repeats transfers.{first[transfer_id]}.transfer_id",
                }
            )
        first.setdefault(transfer_id, index)
    return problems


def _batch_response(envelopes: list[InboundEnvelope], results: list[IngestResult]) -> Response:
    stored = sum(1 for r in results if r.created)
    return JSONResponse(
        {
            "transfers": [
                {"transfer_id": e.external_id, "receipt": r.receipt, "created": r.created}
                for e, r in zip(envelopes, results, strict=True)
            ],
            "stored": stored,
            "duplicates": len(results) - stored,
        },
        status_code=202 if stored else 200,
    )
