"""A role removed is power removed: the cases go on in other hands, the old cards go dead.

A chief who loses his lane hands its cases to the lane's chief now in charge, or, with nobody
left, to the street office's triage; an officer who loses the department leaves its cases to
the department's other officers, or to triage when there are none. Every move is on the
case's timeline; the new hands get the card; the old card keeps no button, and a press on
it anyway is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.domain.people import HANDED_ON_NOTE
from bot.i18n import t
from storage.models import Case, CaseEvent
from storage.people import person_by_telegram_id
from tests.harness import Harness, grant, plain_text
from tests.test_cli import env_for, run_cli
from tests.test_handling_loop import (
    CHIEF,
    OFFICER,
    accepted_case,
    actions,
    cast,
    first_lane,
    report,
)
from tgemu.emulator import Persona
from tgemu.models import CallbackAnswer

ADMIN, NEW_CHIEF, SECOND_OFFICER = 2301, 2302, 2303
SHED = "胡同口私搭乱建，有人加盖彩钢房"  # 私搭乱建: handled by 城管 (chengguan)


async def someone(h: Harness, telegram_id: int, name: str, lang: str = "zh-hans") -> Persona:
    person = h.emulator.user(telegram_id, first_name=name, language_code=lang)
    await person.send_command("/start")
    await person.expect(contains="随拍即办" if lang.startswith("zh") else "Snap it")
    return person


async def admin(h: Harness) -> Persona:
    await grant(h, ADMIN, "admin")
    return await someone(h, ADMIN, "Admin", "en")


async def press_on(h: Harness, who: Persona, message_id: int, data: str) -> CallbackAnswer:
    """Press `data` on one given bot message in `who`'s chat; the bot's answer."""
    before = len(who.callback_answers)
    await who.press_callback(message_id, data)
    return await h.emulator.wait_until(
        lambda: who.callback_answers[before] if len(who.callback_answers) > before else None
    )


async def buttons_gone(h: Harness, who: Persona, message_id: int) -> None:
    await h.emulator.wait_until(lambda: not who.message(message_id).reply_markup)


async def fresh(h: Harness, case: Case) -> Case:
    async with h.session() as session:
        row = await session.get(Case, case.id)
        assert row is not None
        return row


async def person_id(h: Harness, telegram_id: int) -> int:
    async with h.session() as session:
        found = await person_by_telegram_id(session, telegram_id)
        assert found is not None
        return found.id


async def last_event(h: Harness, case: Case) -> CaseEvent:
    return (await h.events(case.id))[-1]


async def test_a_chief_removed_hands_his_case_to_the_lanes_new_chief(h: Harness) -> None:
    p = await cast(h)
    boss = await admin(h)
    lane_id = first_lane(h)[0]
    await grant(h, NEW_CHIEF, "chief", lane_id, "lane")  # the second chief: new cases go to CHIEF
    new_chief = await someone(h, NEW_CHIEF, "新街巷长")
    case, card = await accepted_case(h, p)
    chief = p["chief"]
    assert chief.message(card).reply_markup  # resolve, whistle, transfer, reject

    await boss.send_command("/people", f"remove {CHIEF} chief")
    await boss.expect(contains=f"Removed 1 role(s) from {CHIEF}")
    handed = await new_chief.expect(contains=f"案件 {case.number}")
    assert t("zh", "card.button.resolve") in str(handed.reply_markup)  # accepted: goes on
    await chief.expect(contains=plain_text("zh", "people.removed_you"))
    await chief.expect(contains=plain_text("zh", "people.handed_on", numbers=case.number))
    await buttons_gone(h, chief, card)

    answer = await press_on(h, chief, card, f"card:resolve:{case.id}")
    assert answer.show_alert and answer.text == t("zh", "card.not_yours")
    row = await fresh(h, case)
    assert (row.state, row.assignee_id) == ("accepted", await person_id(h, NEW_CHIEF))
    moved = await last_event(h, case)
    assert (moved.action, moved.actor_id, moved.note) == (
        "transferred",
        await person_id(h, ADMIN),
        HANDED_ON_NOTE,
    )
    assert moved.data is not None and moved.data["reason"] == "role_removed"
    # The new chief acts on it.
    await new_chief.press(t("zh", "card.button.resolve"))
    await new_chief.expect(contains=plain_text("zh", "card.ask_resolve", number=case.number))


async def test_with_no_chief_left_the_case_goes_to_triage_from_the_shell(
    h: Harness, database_url: str, tmp_path: Path
) -> None:
    p = await cast(h)
    chief, supervisor = p["chief"], p["supervisor"]
    case = await report(h, p["resident"])
    card = (await chief.expect(contains=f"案件 {case.number}")).message_id

    env = env_for(database_url, tmp_path)
    code, out, err = await run_cli(
        "people", "remove", "--telegram-id", str(CHIEF), "--role", "chief", env=env
    )
    assert code == 0, err
    assert f"{case.number} (triage): handed on to the supervisors" in out
    # The shell wrote the messages at the real time; the bot's clock catches up to send them.
    h.clock.set(datetime.now(UTC) + timedelta(seconds=1))
    h.ctx.sender.wake()
    sorting = await supervisor.expect(contains=f"Case {case.number}")
    assert h.district.categories["duiwuduiliao"].name_en in str(sorting.reply_markup)
    await chief.expect(contains=plain_text("zh", "people.handed_on", numbers=case.number))
    await buttons_gone(h, chief, card)

    answer = await press_on(h, chief, card, f"card:accept:{case.id}")
    assert answer.show_alert and answer.text == t("zh", "card.not_yours")
    row = await fresh(h, case)
    assert (row.state, row.assignee_id) == ("triage", None)
    moved = await last_event(h, case)
    assert (moved.action, moved.actor_id) == ("transferred", None)
    assert await actions(h, case) == ["submitted", "dispatched", "transferred"]


async def report_shed(h: Harness, resident: Persona) -> Case:
    return await report(h, resident, SHED, color=(120, 40, 160))


async def test_the_last_officer_removed_leaves_the_department_case_to_triage(h: Harness) -> None:
    p = await cast(h)
    boss = await admin(h)
    officer, supervisor = p["officer"], p["supervisor"]
    case = await report_shed(h, p["resident"])
    card = await officer.expect(contains=f"Case {case.number}")
    assert t("en", "card.button.accept") in str(card.reply_markup)

    await boss.send_command("/people", f"remove {OFFICER} officer chengguan")
    await boss.expect(contains=f"Removed 1 role(s) from {OFFICER}")
    await supervisor.expect(contains=f"Case {case.number}")
    await officer.expect(contains=plain_text("en", "people.handed_on", numbers=case.number))
    await buttons_gone(h, officer, card.message_id)

    answer = await press_on(h, officer, card.message_id, f"card:accept:{case.id}")
    assert answer.show_alert and answer.text == t("en", "card.not_yours")
    row = await fresh(h, case)
    assert (row.state, row.department_id) == ("triage", None)
    assert (await last_event(h, case)).action == "transferred"


async def test_a_department_with_officers_left_keeps_its_case(h: Harness) -> None:
    p = await cast(h)
    boss = await admin(h)
    officer = p["officer"]
    await grant(h, SECOND_OFFICER, "officer", "chengguan", "department")
    second = await someone(h, SECOND_OFFICER, "Officer Qian", "en")
    case = await report_shed(h, p["resident"])
    card = await officer.expect(contains=f"Case {case.number}")
    await second.expect(contains=f"Case {case.number}")

    await boss.send_command("/people", f"remove {OFFICER} officer chengguan")
    await boss.expect(contains=f"Removed 1 role(s) from {OFFICER}")
    await buttons_gone(h, officer, card.message_id)
    answer = await press_on(h, officer, card.message_id, f"card:accept:{case.id}")
    assert answer.show_alert and answer.text == t("en", "card.not_yours")
    row = await fresh(h, case)
    assert (row.state, row.department_id) == ("dispatched", "chengguan")
    assert await actions(h, case) == ["submitted", "dispatched"]
    # The other officer's card kept its buttons, and works.
    await second.press(t("en", "card.button.accept"))
    await p["resident"].expect(contains=plain_text("zh", "progress.accepted", number=case.number))


async def test_a_whistled_case_stays_with_the_department_when_its_chief_goes(
    h: Harness,
) -> None:
    p = await cast(h)
    boss = await admin(h)
    chief, officer, supervisor = p["chief"], p["officer"], p["supervisor"]
    case, card = await accepted_case(h, p)
    await chief.press_callback(card, f"whi:{case.id}:chengguan")
    duty = await officer.expect(contains=f"Case {case.number}")

    await boss.send_command("/people", f"remove {CHIEF}")
    await boss.expect(contains=f"Removed 1 role(s) from {CHIEF}")
    await supervisor.expect(
        contains=f"Case {case.number}",
        predicate=lambda m: t("en", "card.button.duty") in str(m.reply_markup),
    )
    row = await fresh(h, case)
    assert (row.state, row.assignee_id, row.department_id) == ("whistled", None, "chengguan")
    await officer.press_callback(duty.message_id, f"card:duty:{case.id}")
    await p["resident"].expect(
        contains=plain_text("zh", "progress.reported_for_duty", number=case.number)
    )


async def test_a_chief_of_two_lanes_keeps_the_cases_of_the_lane_he_keeps(h: Harness) -> None:
    p = await cast(h)
    boss = await admin(h)
    chief = p["chief"]
    other_lane = first_lane(h, 1)[0]
    await grant(h, CHIEF, "chief", other_lane, "lane")
    case, card = await accepted_case(h, p)

    await boss.send_command("/people", f"remove {CHIEF} chief {other_lane}")
    await boss.expect(contains=f"Removed 1 role(s) from {CHIEF}")
    await chief.expect(contains=plain_text("zh", "people.removed_you"))
    assert chief.message(card).reply_markup
    assert await actions(h, case) == ["submitted", "dispatched", "accepted"]
    await chief.press_callback(card, f"card:resolve:{case.id}")
    await chief.expect(contains=plain_text("zh", "card.ask_resolve", number=case.number))
