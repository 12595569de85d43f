"""Assignment within a queue: by skill, language and presence, by load or in turn, VIP and
vulnerable first, sticky to the customer's last agent, and re-assignment when one leaves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ticket_core.assignment import Agent, Desk, Presence, Strategy, Work
from ticket_core.models import Priority

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CARDS = frozenset({"cards"})


def work(number: str, minutes: int = 0, **fields: object) -> Work:
    values: dict[str, object] = {
        "queue": "complaints",
        "created_at": NOW + timedelta(minutes=minutes),
        "customer_id": int(number[1:]) if number[1:].isdigit() else 0,
    }
    values.update(fields)
    return Work(number, **values)  # type: ignore[arg-type]


def agent(name: str, **fields: object) -> Agent:
    fields.setdefault("queues", frozenset({"complaints"}))
    return Agent(name, **fields)  # type: ignore[arg-type]


def test_only_an_agent_with_the_skill_and_the_language_gets_the_ticket() -> None:
    desk = Desk(
        [
            agent("li"),
            agent("wang", skills=CARDS),
            agent("amy", skills=CARDS, languages=frozenset({"en"})),
        ]
    )
    chosen = desk.choose(work("t1", skills=CARDS, language="en"), NOW)
    assert chosen.agent == "amy"
    assert desk.fits(desk.agents[0], work("t2", skills=CARDS)) == "li lacks cards"
    assert desk.choose(work("t3", skills=CARDS), NOW).agent == "wang"


def test_the_least_loaded_agent_gets_the_next_ticket() -> None:
    desk = Desk([agent("li"), agent("wang")], load={"li": 3, "wang": 1})
    chosen = desk.choose(work("t1"), NOW)
    assert chosen.agent == "wang"
    assert chosen.why.startswith("least loaded: wang holds 1 of 10")
    assert desk.load["wang"] == 2


def test_load_is_weighed_against_capacity_and_a_full_agent_is_skipped() -> None:
    desk = Desk([agent("li", capacity=2), agent("wang", capacity=20)], load={"li": 2, "wang": 5})
    assert desk.choose(work("t1"), NOW).agent == "wang"


def test_round_robin_takes_turns_among_those_who_fit() -> None:
    desk = Desk([agent("a"), agent("b"), agent("c")], strategy=Strategy.round_robin)
    got = [desk.choose(work(f"t{i}"), NOW).agent for i in range(4)]
    assert got == ["a", "b", "c", "a"]


def test_an_absent_agent_gets_nothing() -> None:
    desk = Desk([agent("li", presence=Presence.away), agent("wang", presence=Presence.busy)])
    chosen = desk.choose(work("t1"), NOW)
    assert chosen.agent is None and "waits in the queue" in chosen.why


def test_vip_and_vulnerable_customers_are_served_first() -> None:
    desk = Desk([agent("li", capacity=2)])
    backlog = [
        work("t1", 0, priority=Priority.high),
        work("t2", 5, vip=True),
        work("t3", 10, vulnerable=True),
    ]
    done = desk.assign(backlog, NOW)
    assert [(a.number, a.agent) for a in done] == [("t2", "li"), ("t3", "li"), ("t1", None)]


def test_the_customers_last_agent_gets_it_when_available_even_if_busier() -> None:
    desk = Desk([agent("li"), agent("wang")], load={"li": 5, "wang": 0}, last_agent_of={7: "li"})
    chosen = desk.choose(work("t7"), NOW)
    assert (chosen.agent, chosen.why) == ("li", "sticky: li handled this customer's last ticket")


def test_the_sticky_agent_is_passed_over_when_away() -> None:
    desk = Desk([agent("li", presence=Presence.away), agent("wang")], last_agent_of={7: "li"})
    assert desk.choose(work("t7"), NOW).agent == "wang"


def test_an_agent_going_away_has_their_tickets_reassigned() -> None:
    desk = Desk(
        [agent("li"), agent("wang"), agent("zhao")],
        load={"li": 2, "wang": 1, "zhao": 0},
        last_agent_of={1: "li"},
    )
    moved = desk.agent_left("li", [work("t1", 0), work("t2", 1, vip=True)], NOW)
    assert [a.number for a in moved] == ["t2", "t1"]  # the VIP first
    assert all(a.agent in {"wang", "zhao"} for a in moved)
    assert desk.load["li"] == 0
    assert desk.fits(desk.agents[0], work("t9")) == "li is away"
