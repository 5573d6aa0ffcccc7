"""Buttons cannot be forged or replayed into harm: every press is checked again on the server.

Callback data carries ids only, so anyone can type any payload. A press by the wrong person,
a stale press, a replay or a malformed payload gets an alert (or a harmless answer), and the
case, its timeline and everyone else's chats stay as they were.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from bot.i18n import t
from storage.models import Case, OutboxMessage, Person
from tests.harness import Harness, grant, jpeg, plain_text
from tests.test_handling_loop import (
    accepted_case,
    actions,
    cast,
    first_lane,
    has_button,
    report,
    resolve,
    state_of,
)
from tgemu.emulator import Persona
from tgemu.models import CallbackAnswer

OTHER_CHIEF, OTHER_OFFICER, OTHER_SUPERVISOR, STRANGER = 2101, 2102, 2103, 2199


async def press(h: Harness, who: Persona, data: str) -> CallbackAnswer:
    """Press a hand-made button on the newest bot message in `who`'s chat; the bot's answer."""
    before = len(who.callback_answers)
    message = who.last
    assert message is not None, "the persona needs a bot message to press on"
    await who.press_callback(message.message_id, data)
    return await h.emulator.wait_until(
        lambda: who.callback_answers[before] if len(who.callback_answers) > before else None
    )


async def snapshot(h: Harness, case: Case, *, besides: Persona) -> tuple[object, ...]:
    """Everything a press could harm: the case row, its timeline, and other chats' outbox."""
    async with h.session() as session:
        fresh = await session.get(Case, case.id)
        assert fresh is not None
        others = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.chat_id != besides.chat_id)
        )
        row = (
            fresh.state,
            fresh.assignee_id,
            fresh.lane_id,
            fresh.street_id,
            fresh.department_id,
            fresh.rating,
            fresh.priority,
            fresh.reporter_id,
            len(fresh.photos),
        )
    return (*row, tuple(await actions(h, case)), others)


async def settled(h: Harness, who: Persona) -> None:
    """Wait until `who`'s earlier updates are done: their chat's updates run one at a time."""
    await who.send_command("/help")
    await who.expect(contains="/report")


async def newcomer(h: Harness, user_id: int, name: str, lang: str = "zh-hans") -> Persona:
    person = h.emulator.user(user_id, first_name=name, language_code=lang)
    await person.send_command("/start")
    await person.expect(contains="随拍即办" if lang.startswith("zh") else "Snap it")
    return person


async def test_a_stranger_forging_every_kind_of_button_changes_nothing(h: Harness) -> None:
    p = await cast(h)
    case = await report(h, p["resident"])
    await p["chief"].expect(contains=f"案件 {case.number}")
    stranger = await newcomer(h, STRANGER, "路人")
    before = await snapshot(h, case, besides=stranger)
    n = case.id
    forged = [
        *(f"card:{a}:{n}" for a in ("accept", "resolve", "whistle", "transfer", "reject")),
        *(f"card:{a}:{n}" for a in ("duty", "back", "frobnicate")),
        f"whi:{n}:chengguan",
        f"whi:{n}:no-such-department",
        f"trf:{n}:-",
        f"trf:{n}:{first_lane(h, 1)[0]}",
        f"rate:{n}:5",
        f"rate:{n}:0",
        f"tri:{n}:duiwuduiliao",
        *(f"case:{a}:{n}" for a in ("note", "photo", "withdraw", "withdraw_yes")),
        "rep:confirm:0123456789abcdef",
        "rep:cancel:0123456789abcdef",
        "fgt:yes:0123456789abcdef",
    ]
    for data in forged:
        answer = await press(h, stranger, data)
        assert answer.show_alert, f"{data}: {answer}"
        assert answer.text, data
    # Harmless by design: "keep my case" and a language the bot does not have.
    assert not (await press(h, stranger, f"case:withdraw_no:{n}")).show_alert
    assert not (await press(h, stranger, "lang:xx")).show_alert
    await settled(h, stranger)
    assert await snapshot(h, case, besides=stranger) == before
    async with h.session() as session:
        me = await session.scalar(select(Person).where(Person.telegram_id == STRANGER))
        assert me is not None and me.language == "zh" and not me.forgotten_at


MALFORMED = [
    "card:accept:abc",
    "card:accept:",
    "card:accept:0",
    "card:accept:-1",
    "card:accept:99999999999",  # past PostgreSQL's integer: must not reach the database
    "card:accept:1:2",
    "card",
    "whi::",
    "trf:1",
    "rate:1:9",
    "rate:1:x",
    "tri:x:y",
    "case:withdraw_yes:1e3",
    "lang",
    "fgt:yes",
    "zzz:1",
    "x" * 64,
    "案" * 21,  # 63 bytes of UTF-8
    "card:accept:1\x00",
]


async def test_malformed_payloads_get_an_alert_are_logged_and_change_nothing(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    p = await cast(h)
    resident, chief = p["resident"], p["chief"]
    case = await report(h, resident)
    await chief.expect(contains=f"案件 {case.number}")
    before = await snapshot(h, case, besides=chief)
    with caplog.at_level(logging.WARNING, logger="bot.telegram.handlers.fallback"):
        for data in MALFORMED:
            answer = await press(h, chief, data)
            assert answer.show_alert, data
            assert answer.text == t("zh", "button.unknown"), data
    await settled(h, chief)
    assert await snapshot(h, case, besides=chief) == before
    logged = [r.getMessage() for r in caplog.records if r.name == "bot.telegram.handlers.fallback"]
    assert len(logged) == len(MALFORMED)
    assert all("unknown button" in line for line in logged)
    # Nothing failed on the way: no "sorry, something went wrong" to anybody.
    assert not any(t("zh", "error.internal") in m.content for m in chief.inbox())


async def test_nobody_does_another_role_s_part_nor_sees_another_scope_s_case(h: Harness) -> None:
    p = await cast(h)
    resident, chief, officer = p["resident"], p["chief"], p["officer"]
    lane_id = first_lane(h)[0]
    street = h.district.lanes[lane_id].street_id
    other_lane = next(
        lane.id
        for lane in sorted(h.district.lanes.values(), key=lambda lane: lane.id)
        if lane.street_id == street and lane.id != lane_id
    )
    other_street = next(s for s in h.district.street_offices if s != street)
    await grant(h, OTHER_CHIEF, "chief", other_lane, "lane")
    await grant(h, OTHER_OFFICER, "officer", "huanwei", "department")
    await grant(h, OTHER_SUPERVISOR, "supervisor", other_street, "street")
    others = {
        "other_chief": await newcomer(h, OTHER_CHIEF, "隔壁街巷长"),
        "other_officer": await newcomer(h, OTHER_OFFICER, "环卫"),
        "other_supervisor": await newcomer(h, OTHER_SUPERVISOR, "三里屯"),
        "other_resident": await newcomer(h, 1002, "邻居"),
    }
    case = await report(h, resident)
    await chief.expect(contains=f"案件 {case.number}")
    n = case.id
    for name, who in others.items():
        for data in (f"card:accept:{n}", f"card:reject:{n}", f"rate:{n}:1", f"case:withdraw:{n}"):
            answer = await press(h, who, data)
            assert answer.show_alert, (name, data)
        await who.send_command("/case", case.number)
        await who.expect(contains=plain_text("zh", "case.not_found", number=case.number))

    await chief.press(t("zh", "card.button.accept"))
    await resident.expect(contains=plain_text("zh", "progress.accepted", number=case.number))
    await chief.press_callback(chief.inbox()[-1].message_id, f"whi:{n}:chengguan")
    await officer.expect(contains=f"Case {case.number}")
    assert await state_of(h, case) == "whistled"
    # The chief cannot report for duty on his own whistle; another department cannot either.
    for who in (chief, others["other_officer"]):
        answer = await press(h, who, f"card:duty:{n}")
        assert answer.show_alert and answer.text == t("zh", "card.not_yours")
    # An officer cannot blow the whistle on another department.
    answer = await press(h, officer, f"whi:{n}:huanwei")
    assert answer.show_alert
    assert await state_of(h, case) == "whistled"
    await officer.press(t("en", "card.button.duty"))
    await resident.expect(
        contains=plain_text("zh", "progress.reported_for_duty", number=case.number)
    )
    assert await actions(h, case) == [
        "submitted",
        "dispatched",
        "accepted",
        "whistled",
        "reported_for_duty",
    ]
    # Those in scope see the case.
    for who, lang in ((chief, "zh"), (officer, "en"), (p["supervisor"], "en")):
        await who.send_command("/case", case.number)
        await who.expect(contains=t(lang, "event.reported_for_duty"))


async def test_every_button_replayed_after_its_step_is_stale(h: Harness) -> None:
    p = await cast(h)
    resident, chief, officer = p["resident"], p["chief"], p["officer"]
    case, card = await accepted_case(h, p)
    n = case.id

    async def replay(who: Persona, data: str) -> None:
        answer = await press(h, who, data)
        assert answer.show_alert, data

    await replay(chief, f"card:accept:{n}")
    await chief.press_callback(card, f"card:whistle:{n}")
    await chief.expect_edit(message_id=card)
    await chief.press(h.district.departments["chengguan"].name_zh)
    await officer.expect(contains=f"Case {case.number}")
    await replay(chief, f"whi:{n}:chengguan")
    await replay(chief, f"whi:{n}:huanwei")
    await officer.press(t("en", "card.button.duty"))
    await resident.expect(
        contains=plain_text("zh", "progress.reported_for_duty", number=case.number)
    )
    await replay(officer, f"card:duty:{n}")
    await resolve(h, chief, case, "已清理")
    await resident.expect(contains="已清理")
    await replay(chief, f"card:resolve:{n}")
    await replay(chief, f"card:accept:{n}")
    await resident.press("⭐⭐⭐⭐⭐")
    thanks = plain_text("zh", "rate.thanks", number=case.number, stars=5).splitlines()[0][:10]
    await resident.expect(contains=thanks)
    for data in (f"rate:{n}:5", f"rate:{n}:1", f"rate:{n}:0", f"case:withdraw_yes:{n}"):
        await replay(resident, data)
    for data in (f"card:reject:{n}", f"trf:{n}:-", f"card:transfer:{n}"):
        await replay(chief, data)
    await settled(h, chief)
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


async def test_a_transfer_press_takes_only_a_lane_its_picker_offered(h: Harness) -> None:
    p = await cast(h)
    chief = p["chief"]
    case = await report(h, p["resident"])
    card = (await chief.expect(contains=f"案件 {case.number}")).message_id
    await chief.press_callback(card, f"card:transfer:{case.id}")
    picker = await chief.expect_edit(message_id=card)
    offered = {
        b["callback_data"].split(":", 2)[2]
        for row in (picker.reply_markup or {}).get("inline_keyboard", [])
        for b in row
        if b["callback_data"].startswith("trf:")
    }
    far = next(lane for lane in sorted(h.district.lanes, reverse=True) if lane not in offered)
    assert far != case.lane_id
    before = await snapshot(h, case, besides=chief)
    for lane in (far, case.lane_id, "NOPE"):
        answer = await press(h, chief, f"trf:{case.id}:{lane}")
        assert answer.show_alert and answer.text == t("zh", "button.unknown"), lane
        # Had the pick been taken, these words would be the reason of a transfer there.
        await chief.send_text("位置属于隔壁胡同")
        await settled(h, chief)
    assert await snapshot(h, case, besides=chief) == before
    # A lane the picker offered is taken.
    pick = sorted(offered - {"-"})[0]
    await chief.press_callback(card, f"trf:{case.id}:{pick}")
    where = h.district.lanes[pick].name_zh
    await chief.expect(
        contains=plain_text("zh", "card.ask_transfer", number=case.number, where=where)
    )


async def test_replayed_confirm_triage_withdraw_and_forget_buttons(h: Harness) -> None:
    p = await cast(h)
    resident, supervisor = p["resident"], p["supervisor"]
    lane_id, lat, lon = first_lane(h)
    await resident.send_photo(jpeg((90, 90, 90)), caption="这里有点情况，麻烦来看看")
    await resident.send_location(lat, lon)
    summary = await resident.expect(contains="照片：1 张")
    confirm = summary.reply_markup["inline_keyboard"][0][0]["callback_data"]
    await resident.press(t("zh", "button.confirm"))
    await resident.expect(contains="CY-")
    [case] = await h.cases()
    # The confirm button again, and the draft's other buttons: the same case, no second one.
    for data in (confirm, confirm.replace("confirm", "cancel"), confirm.replace("confirm", "desc")):
        answer = await press(h, resident, data)
        assert case.number in (answer.text or "")
    assert await h.count(Case) == 1

    # Not sure what it is: the street office sorts it; the replayed pick does nothing.
    await supervisor.expect(contains=f"Case {case.number}")
    await has_button(h, supervisor, h.district.categories["duiwuduiliao"].name_en)
    await supervisor.press(h.district.categories["duiwuduiliao"].name_en)
    await p["chief"].expect(contains=f"案件 {case.number}")
    answer = await press(h, supervisor, f"tri:{case.id}:luantingche")
    assert answer.show_alert
    async with h.session() as session:
        fresh = await session.get(Case, case.id)
        assert fresh is not None and fresh.category_id == "duiwuduiliao"

    # Withdrawn once; the confirmation pressed again is refused.
    await resident.send_command("/case", case.number)
    await resident.expect(predicate=lambda m: t("zh", "button.withdraw") in str(m.reply_markup))
    await resident.press(t("zh", "button.withdraw"))
    await resident.expect(contains=plain_text("zh", "case.confirm_withdraw", number=case.number))
    await resident.press(t("zh", "button.withdraw_yes"))
    await resident.expect(contains=plain_text("zh", "case.withdrawn", number=case.number))
    answer = await press(h, resident, f"case:withdraw_yes:{case.id}")
    assert answer.show_alert
    assert (await actions(h, case)).count("withdrawn") == 1

    # /forget answered "no", then its buttons replayed: nothing forgotten.
    await resident.send_command("/forget")
    question = await resident.expect(
        predicate=lambda m: t("zh", "forget.button_yes") in str(m.reply_markup)
    )
    buttons = [b["callback_data"] for row in question.reply_markup["inline_keyboard"] for b in row]
    await resident.press(t("zh", "forget.button_no"))
    await resident.expect(contains=t("zh", "forget.kept"))
    for data in buttons:
        answer = await press(h, resident, data)
        assert answer.show_alert and answer.text == t("zh", "forget.expired")
    async with h.session() as session:
        fresh = await session.get(Case, case.id)
        assert fresh is not None and fresh.reporter_id is not None
    assert lane_id == case.lane_id
