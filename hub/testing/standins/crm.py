"""A stand-in for the bank's CRM adapter, speaking the contract in docs/context-providers.md.

It keeps a directory of customers, each reachable by the identities the CRM knows them by
(an app user id, a WeChat openid, an email address, a phone number), and answers
``POST /customers/lookup`` with the first customer any of the request's identities names.
Written from the contract, not from the provider: it checks the signature (401), the request
shape (422), and can be scripted to be down, slow, hanging, refusing or answering garbage
(``hub.testing.standins.scriptable``).

Tests start it in-process (``CrmStandIn``); ``make run`` and people trying it out run it on
its own, with three demo customers (a VIP, an elderly customer, a foreign customer)::

    python -m hub.testing.standins.crm --port 8003 --secret whsec_...

and steer it while it runs::

    curl -X POST localhost:8003/_control -d '{"mode": "down"}'   # ok, slow, hang, refuse, ...
    curl -X POST localhost:8003/_control/customers -d '{"customer_number": "C9", "identities":
         [{"kind": "app_user", "value": "u-9"}], "segments": ["vip"]}'
    curl localhost:8003/_control/requests                        # what it was asked
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from hub.testing.standins.scriptable import CommandLine, ScriptableStandIn


@dataclass(frozen=True)
class CrmRecord:
    customer_number: str
    name: str | None = None
    tier: str | None = None
    segments: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    relationship_manager: str | None = None

    def as_answer(self, matched_by: str) -> dict[str, Any]:
        return {
            "customer_number": self.customer_number,
            "name": self.name,
            "tier": self.tier,
            "segments": list(self.segments),
            "products": list(self.products),
            "relationship_manager": self.relationship_manager,
            "matched_by": matched_by,
        }


def _key(kind: str, value: str) -> tuple[str, str]:
    value = value.strip()
    return kind, value.lower() if kind == "email" else value


@dataclass
class CrmStandIn(ScriptableStandIn):
    route: ClassVar[str] = "/customers/lookup"
    directory: dict[tuple[str, str], CrmRecord] = field(default_factory=dict)

    def add_customer(self, record: CrmRecord, *identities: tuple[str, str]) -> CrmRecord:
        """Make the customer reachable by each ``(kind, value)``."""
        for kind, value in identities:
            self.directory[_key(kind, value)] = record
        return record

    def answer(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        identities = request.get("identities")
        if not isinstance(identities, list) or not all(
            isinstance(i, dict)
            and isinstance(i.get("kind"), str)
            and isinstance(i.get("value"), str)
            for i in identities
        ):
            return 422, {"error": "identities must be a list of {kind, value}"}
        if not isinstance(request.get("request_id"), str):
            return 422, {"error": "request_id is missing"}
        for identity in identities:
            record = self.directory.get(_key(identity["kind"], identity["value"]))
            if record is not None:
                return 200, {"found": True, "customer": record.as_answer(identity["kind"])}
        return 200, {"found": False}

    def extra_routes(self, app: web.Application) -> None:
        app.router.add_post("/_control/customers", self._add)

    async def _add(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            record = CrmRecord(
                customer_number=str(body["customer_number"]),
                name=body.get("name"),
                tier=body.get("tier"),
                segments=tuple(body.get("segments", ())),
                products=tuple(body.get("products", ())),
                relationship_manager=body.get("relationship_manager"),
            )
            pairs = [(str(i["kind"]), str(i["value"])) for i in body["identities"]]
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": f"bad customer: {exc}"}, status=400)
        self.add_customer(record, *pairs)
        return web.json_response({"added": record.customer_number, "identities": len(pairs)})


def demo_directory(stand_in: CrmStandIn) -> None:
    """What ``make run`` shows: the demo's app users are a VIP, an elderly and a foreign
    customer."""
    stand_in.add_customer(
        CrmRecord(
            "C00012345", "张伟", "private_banking", ("vip",), ("credit_card", "mortgage"), "王经理"
        ),
        ("app_user", "u-1001"),
    )
    stand_in.add_customer(
        CrmRecord("C00023456", "李秀英", "standard", ("elderly",), ("pension_account",), None),
        ("app_user", "u-1002"),
    )
    stand_in.add_customer(
        CrmRecord("C00034567", "Anna Schmidt", "gold", ("foreign",), ("debit_card",), "陈经理"),
        ("app_user", "u-1003"),
    )


COMMAND_LINE = CommandLine(
    module="crm",
    what="CRM",
    description="A stand-in for the bank's CRM adapter (docs/context-providers.md).",
    port=8003,
    make=CrmStandIn,
    seed=demo_directory,
    no_demo="start with an empty directory",
)
main = COMMAND_LINE.main


if __name__ == "__main__":
    main()
