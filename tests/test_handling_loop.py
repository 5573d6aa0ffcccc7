"""The handling loop, end to end: chiefs act on cards, departments report for duty, residents rate.

Time is a controllable clock: deadlines fire when the test moves it and runs the sweep.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.context import AppContext
from bot.i18n import t
from bot.jobs import scheduler
from bot.jobs.scheduler import RETRY_FAILED_STEP, sweep
from bot.telegram.outgoing import Outbox
from storage.models import Case, Deadline, OutboxMessage, Person
from tests.harness import Harness, grant, jpeg, plain_text
from tgemu.emulator import Persona

CHIEF, OFFICER, SUPERVISOR, OTHER_CHIEF = 2001, 2002, 2003, 2004
PILED_UP = "胡同口堆物堆料，旧家具堵住了通道"  # 堆物堆料: handled by the lane chief


def first_lane(h: Harness, index: int = 0) -> tuple[str, float, float]:
    lane = sorted(h.district.lanes.values(), key=lambda lane: lane.id)[index]
    return lane.id, *lane.representative_point


async def cast(h: Harness) -> dict[str, Persona]:
    """A lane chief, a 城管 officer and the street office's supervisor, in the chat."""
    lane_id, _lat, _lon = first_lane(h)
    await grant(h, CHIEF, "chief", lane_id, "lane")
    await grant(h, OFFICER, "officer", "chengguan", "department")
    await grant(h, SUPERVISOR, "supervisor", h.district.lanes[lane_id].street_id, "street")
    emu = h.emulator
    people = {
        "resident": emu.user(1001, first_name="王芳", language_code="zh-hans"),
        "chief": emu.user(CHIEF, first_name="李街巷长", language_code="zh-hans"),
        "officer": emu.user(OFFICER, first_name="Officer Zhao", language_code="en"),
        "supervisor": emu.user(SUPERVISOR, first_name="Supervisor", language_code="en"),
    }
    for name in ("chief", "officer", "supervisor"):  # they have talked to the bot before
        await people[name].send_command("/start")
        await people[name].expect(contains="随拍即办")
    return people


async def report(
    h: Harness, resident: Persona, text: str = PILED_UP, color: tuple[int, int, int] = (200, 60, 40)
) -> Case:
    _lane, lat, lon = first_lane(h)
    await resident.send_photo(jpeg(color), caption=text)
    await resident.send_location(lat, lon)
    await resident.expect(contains="照片：1 张")
    await resident.press(t("zh", "button.confirm"))
    await resident.expect(contains="CY-")
    [case, *_] = [c for c in await h.cases() if c.description == text]
    return case


async def state_of(h: Harness, case: Case) -> str:
    async with h.session() as session:
        fresh = await session.get(Case, case.id)
        assert fresh is not None
        return fresh.state


async def actions(h: Harness, case: Case) -> list[str]:
    return [e.action for e in await h.events(case.id)]


async def test_report_accept_whistle_duty_resolve_rate_five_closes(h: Harness) -> None:
    p = await cast(h)
    resident, chief, officer = p["resident"], p["chief"], p["officer"]
    case = await report(h, resident)
    await resident.expect(
        contains=plain_text(
            "zh", "routed.chief", number=case.number, lane=h.district.lanes[case.lane_id].name_zh
        )
    )
    card = await chief.expect(contains=f"案件 {case.number}")
    assert "堆物堆料" in (card.text or "")
    assert [b["text"] for row in card.reply_markup["inline_keyboard"] for b in row] == [
        t("zh", f"card.button.{a}") for a in ("accept", "whistle", "transfer", "reject")
    ]

    await chief.press(t("zh", "card.button.accept"))
    await resident.expect(contains=plain_text("zh", "progress.accepted", number=case.number))
    edited = await chief.expect_edit(message_id=card.message_id, contains="办理中")
    assert t("zh", "card.button.resolve") in str(edited)
    assert await state_of(h, case) == "accepted"

    await chief.press(t("zh", "card.button.whistle"))
    await chief.expect_edit(message_id=card.message_id, contains="")
    await chief.press(h.district.departments["chengguan"].name_zh)
    await resident.expect(
        contains=plain_text(
            "zh",
            "progress.whistled",
            number=case.number,
            department=h.district.departments["chengguan"].name_zh,
        )
    )
    duty_card = await officer.expect(contains=f"Case {case.number}")
    assert t("en", "card.button.duty") in str(duty_card.reply_markup)

    await officer.press(t("en", "card.button.duty"))
    await resident.expect(
        contains=plain_text("zh", "progress.reported_for_duty", number=case.number)
    )
    assert await state_of(h, case) == "accepted"

    await has_button(h, chief, t("zh", "card.button.resolve"))
    await chief.press(t("zh", "card.button.resolve"))
    await chief.expect(contains=plain_text("zh", "card.ask_resolve", number=case.number))
    await chief.send_photo(jpeg((20, 160, 60)), caption="已清理完毕，通道恢复畅通")
    await chief.expect(contains=plain_text("zh", "card.resolved", number=case.number))
    after = await resident.expect(predicate=lambda m: m.method == "sendPhoto")
    assert after.photo_bytes
    asked = await resident.expect(contains="已清理完毕")
    assert "⭐⭐⭐⭐⭐" in str(asked.reply_markup)

    await resident.press("⭐⭐⭐⭐⭐")
    await resident.expect(
        contains=plain_text("zh", "rate.thanks", number=case.number, stars=5).splitlines()[0][:10]
    )
    await resident.send_command("/skip")
    await resident.expect(contains=t("zh", "rate.comment_skipped"))

    assert await state_of(h, case) == "closed"
    assert await actions(h, case) == [
        "submitted",
        "dispatched",
        "accepted",
        "whistled",
        "reported_for_duty",
        "resolved",
        "rated",
        "closed",
    ]
    # Every card of the case shows its final state without buttons.
    final = chief.message(card.message_id)
    assert "已结案" in (final.text or "") and not final.reply_markup


async def accepted_case(h: Harness, p: dict[str, Persona]) -> tuple[Case, int]:
    case = await report(h, p["resident"])
    card = await p["chief"].expect(contains=f"案件 {case.number}")
    await p["chief"].press(t("zh", "card.button.accept"))
    await p["resident"].expect(contains=plain_text("zh", "progress.accepted", number=case.number))
    return case, card.message_id


async def has_button(h: Harness, person: Persona, text: str) -> None:
    """Wait until one of the bot's messages to `person` offers the button `text`."""
    await h.emulator.wait_until(lambda: any(text in str(m.reply_markup) for m in person.inbox()))


async def resolve(h: Harness, chief: Persona, case: Case, note: str) -> None:
    await has_button(h, chief, t("zh", "card.button.resolve"))
    await chief.press(t("zh", "card.button.resolve"))
    await chief.expect(contains=plain_text("zh", "card.ask_resolve", number=case.number))
    await chief.send_photo(jpeg((10, 200, 90)), caption=note)
    await chief.expect(contains=plain_text("zh", "card.resolved", number=case.number))


async def test_rating_one_reopens_then_resolved_again_and_rated_four(h: Harness) -> None:
    p = await cast(h)
    resident, chief, supervisor = p["resident"], p["chief"], p["supervisor"]
    case, _card = await accepted_case(h, p)
    await resolve(h, chief, case, "已清理")
    await resident.expect(contains="已清理")
    await resident.press("⭐")
    await resident.expect(contains=plain_text("zh", "rate.reopened", number=case.number))
    await chief.expect(
        contains=plain_text(
            "zh", "reopen.assignee", number=case.number, why=t("zh", "reopen.low_rating", stars=1)
        )
    )
    await supervisor.expect(contains=f"Case {case.number} was reopened")
    async with h.session() as session:
        fresh = await session.get(Case, case.id)
        assert fresh is not None and fresh.state == "accepted" and fresh.priority == 1

    await resolve(h, chief, case, "重新清理，已复查")
    await resident.expect(contains="重新清理")
    await resident.press("⭐⭐⭐⭐")
    await resident.expect(contains="感谢您的评价（4 星）")
    await resident.send_text("这次干净了，谢谢")
    await resident.expect(contains=t("zh", "rate.comment_thanks"))
    assert await state_of(h, case) == "closed"
    assert (await actions(h, case))[-7:] == [
        "resolved",
        "rated",
        "reopened",
        "resolved",
        "rated",
        "closed",
        "commented",
    ]


async def test_reject_needs_a_reason_which_the_resident_sees(h: Harness) -> None:
    p = await cast(h)
    resident, chief = p["resident"], p["chief"]
    case = await report(h, resident, "堆物堆料？其实是我家门口的私人物品")
    await chief.expect(contains=f"案件 {case.number}")
    await chief.press(t("zh", "card.button.reject"))
    await chief.expect(contains=plain_text("zh", "card.ask_reject", number=case.number))
    await chief.send_text("属于私人物品，不属于公共事务")
    await chief.expect(contains=plain_text("zh", "card.rejected", number=case.number))
    seen = await resident.expect(contains="属于私人物品")
    assert case.number in (seen.text or "")
    assert await state_of(h, case) == "rejected"


async def test_transfer_to_another_lane_reaches_its_chief(h: Harness) -> None:
    p = await cast(h)
    resident, chief = p["resident"], p["chief"]
    case = await report(h, resident)
    card = await chief.expect(contains=f"案件 {case.number}")
    await chief.press(t("zh", "card.button.transfer"))
    edited = await chief.expect_edit(message_id=card.message_id)
    buttons = (
        [b for row in edited.reply_markup["inline_keyboard"] for b in row]
        if edited.reply_markup
        else []
    )
    target = next(
        b
        for b in buttons
        if b["callback_data"].startswith("trf:") and not b["callback_data"].endswith(":-")
    )
    lane_id = target["callback_data"].split(":", 2)[2]
    await grant(h, OTHER_CHIEF, "chief", lane_id, "lane")
    other = h.emulator.user(OTHER_CHIEF, first_name="另一位街巷长", language_code="zh-hans")
    await other.send_command("/start")
    await other.expect(contains="随拍即办")
    await chief.press(target["text"])
    await chief.expect(
        contains=plain_text("zh", "card.ask_transfer", number=case.number, where=target["text"])
    )
    await chief.send_text("位置属于隔壁胡同")
    await chief.expect(contains=plain_text("zh", "card.transferred", number=case.number))
    await other.expect(contains=f"案件 {case.number}")
    async with h.session() as session:
        fresh = await session.get(Case, case.id)
        assert fresh is not None and fresh.lane_id == lane_id and fresh.state == "dispatched"
    old = chief.message(card.message_id)
    assert not old.reply_markup


async def test_the_wrong_person_pressing_each_button_gets_an_alert_and_changes_nothing(
    h: Harness,
) -> None:
    p = await cast(h)
    resident, chief = p["resident"], p["chief"]
    case = await report(h, resident)
    card = await chief.expect(contains=f"案件 {case.number}")
    stranger = h.emulator.user(1999, first_name="路人", language_code="zh-hans")
    await stranger.send_command("/start")
    await stranger.expect(contains="随拍即办")
    # Hand-made payloads, pressed on a message in the stranger's own chat.
    own = stranger.inbox()[-1].message_id
    for action in ("accept", "whistle", "transfer", "reject", "resolve", "duty"):
        await stranger.press_callback(own, f"card:{action}:{case.id}")
        await h.emulator.wait_until(lambda: len(stranger.alerts) >= 1)
    for forged in (
        f"whi:{case.id}:chengguan",
        f"trf:{case.id}:-",
        f"rate:{case.id}:5",
        f"tri:{case.id}:other",
    ):
        await stranger.press_callback(own, forged)
    await h.emulator.wait_until(lambda: len(stranger.callback_answers) >= 10)
    assert all(a.show_alert for a in stranger.callback_answers)
    assert await state_of(h, case) == "dispatched"
    assert await actions(h, case) == ["submitted", "dispatched"]

    # The chief pressing Accept twice: the second press is stale and harmless.
    await chief.press_callback(card.message_id, f"card:accept:{case.id}")
    await chief.press_callback(card.message_id, f"card:accept:{case.id}")
    await h.emulator.wait_until(lambda: len(chief.callback_answers) >= 2)
    assert chief.callback_answers[-1].show_alert
    assert (await actions(h, case)).count("accepted") == 1
    # The resident's rating buttons do nothing before the case is resolved.
    await resident.press_callback(resident.inbox()[-1].message_id, f"rate:{case.id}:1")
    await h.emulator.wait_until(lambda: any(a.show_alert for a in resident.callback_answers))
    assert await state_of(h, case) == "accepted"


async def test_deadlines_remind_escalate_and_close_unrated(h: Harness) -> None:
    p = await cast(h)
    resident, chief, supervisor = p["resident"], p["chief"], p["supervisor"]
    case = await report(h, resident)
    await chief.expect(contains=f"案件 {case.number}")
    assert case.response_due_at is not None

    h.clock.advance(timedelta(hours=12, minutes=1))  # half of the 24 h response window
    assert await sweep(h.ctx) == 1
    await chief.expect(contains=f"案件 {case.number} 已过响应时限的一半")
    assert await sweep(h.ctx) == 0  # nothing fires twice

    h.clock.advance(timedelta(hours=9, minutes=40))  # past 90% (21 h 36 min)
    assert await sweep(h.ctx) == 1
    await chief.expect(contains="即将超过响应时限")

    h.clock.advance(timedelta(hours=2, minutes=30))  # past the 24 h limit
    await sweep(h.ctx)
    await chief.expect(contains="已超过响应时限")
    await supervisor.expect(contains=f"Escalated: case {case.number}")
    await supervisor.expect(contains=f"Case {case.number}")
    assert "escalated" in await actions(h, case)

    await chief.press(t("zh", "card.button.accept"))
    await resident.expect(contains=plain_text("zh", "progress.accepted", number=case.number))
    await resolve(h, chief, case, "已处理")
    await resident.expect(contains="已处理")

    h.clock.advance(timedelta(hours=24, minutes=1))
    await sweep(h.ctx)
    reminder = await resident.expect(contains=f"案件 {case.number} 已办结，请为处理结果打分")
    assert "⭐" in str(reminder.reply_markup)
    h.clock.advance(timedelta(hours=48))
    await sweep(h.ctx)
    await resident.expect(contains=plain_text("zh", "rate.closed_unrated", number=case.number))
    assert await state_of(h, case) == "closed"
    closed = [e for e in await h.events(case.id) if e.action == "closed"]
    assert closed[-1].data == {"rated": False}


async def test_tasks_lists_open_cases_soonest_deadline_first(h: Harness) -> None:
    p = await cast(h)
    first = await report(h, p["resident"])
    # Another kind of problem at the same place, another photo: not a duplicate.
    second = await report(h, p["resident"], "墙上贴满了小广告", color=(30, 30, 220))
    chief = p["chief"]
    await chief.send_command("/tasks")
    listing = await chief.expect(contains="待办案件")
    text = listing.text or ""
    assert first.number in text and second.number in text
    assert text.index(first.number) < text.index(second.number)
    assert re.search(r"时限 \d{4}-\d{2}-\d{2} \d{2}:\d{2}", text)


async def test_a_chiefs_patrol_report_on_his_own_lane_is_accepted_at_once(h: Harness) -> None:
    p = await cast(h)
    chief = p["chief"]
    _lane, lat, lon = first_lane(h)
    await chief.send_photo(jpeg((40, 40, 200)), caption="巡查发现：胡同口堆物堆料")
    await chief.send_location(lat, lon)
    await chief.expect(contains="照片：1 张")
    await chief.press(t("zh", "button.confirm"))
    card = await chief.expect(contains="📋")
    assert "办理中" in (card.text or "")  # accepted
    assert t("zh", "card.button.resolve") in str(card.reply_markup)
    [case] = await h.cases()
    assert case.source == "patrol"
    assert await actions(h, case) == ["submitted", "dispatched", "accepted"]


async def test_the_chief_hears_when_the_department_reports_for_duty(h: Harness) -> None:
    p = await cast(h)
    case, _card = await accepted_case(h, p)
    await p["chief"].press(t("zh", "card.button.whistle"))
    await has_button(h, p["chief"], h.district.departments["chengguan"].name_zh)
    await p["chief"].press(h.district.departments["chengguan"].name_zh)
    await p["officer"].expect(contains=f"Case {case.number}")
    await p["officer"].press(t("en", "card.button.duty"))
    await p["chief"].expect(contains=f"已就案件 {case.number} 报到")


async def test_a_failing_deadline_is_set_aside_and_the_rest_of_its_batch_fires(
    h: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """One step whose work fails in the database undoes only itself: the other reminders of
    the batch go out, the failing one is logged and due again later, and then fires."""
    await grant(h, CHIEF, "chief", first_lane(h)[0], "lane")
    due = h.clock.now() - timedelta(minutes=1)
    ids = [await dispatched_with_due_reminder(h, i, due) for i in range(3)]
    poisoned = ids[1]
    real_step = scheduler._deadline_step

    async def failing_step(ctx: AppContext, out: Outbox, case: Case, *args: Any) -> None:
        await real_step(ctx, out, case, *args)
        if case.id == poisoned:  # fails after its reminder was written
            await out.session.execute(text("SELECT no_such_column FROM no_such_table"))

    monkeypatch.setattr(scheduler, "_deadline_step", failing_step)
    with caplog.at_level(logging.ERROR, logger="bot.jobs.scheduler"):
        assert await sweep(h.ctx) == 3
    assert [await reminders(h, i) for i in ids] == [1, 0, 1]
    assert f"case {poisoned}) failed" in caplog.text
    async with h.session() as session:
        step = await session.scalar(select(Deadline).where(Deadline.case_id == poisoned))
        assert step is not None and step.done_at is None
        assert step.due_at == h.clock.now() + RETRY_FAILED_STEP
        messages = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.case_id == poisoned)
        )
        assert messages.all() == []  # its reminder went with its savepoint
    assert await sweep(h.ctx) == 0  # set aside: not taken again at once

    monkeypatch.setattr(scheduler, "_deadline_step", real_step)
    h.clock.advance(RETRY_FAILED_STEP)
    assert await sweep(h.ctx) == 1
    assert [await reminders(h, i) for i in ids] == [1, 1, 1]


async def dispatched_with_due_reminder(h: Harness, n: int, due: datetime) -> int:
    """A case dispatched to the chief whose 50% reminder is due."""
    lane_id = first_lane(h)[0]
    async with h.session() as session, session.begin():
        chief = await session.scalar(select(Person).where(Person.telegram_id == CHIEF))
        assert chief is not None
        now = h.clock.now()
        case = Case(
            number=f"CY-20261123-{n + 1:04d}",
            state="dispatched",
            category_id="duiwuduiliao",
            lane_id=lane_id,
            street_id=h.district.lanes[lane_id].street_id,
            assignee_id=chief.id,
            description=f"堆物堆料 {n}",
            created_at=now,
            updated_at=now,
            response_due_at=now + timedelta(hours=12),
        )
        session.add(case)
        await session.flush()
        session.add(Deadline(case_id=case.id, kind="respond_50", due_at=due))
        return case.id


async def reminders(h: Harness, case_id: int) -> int:
    events = await h.events(case_id)
    return sum(1 for e in events if e.action == "reminded")
