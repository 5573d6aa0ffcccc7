"""Triage: what the classifier cannot sort, a supervisor sorts with one tap, and it is learnt."""

from __future__ import annotations

import csv
import io

from bot.domain.labels import labels_csv
from tests.harness import Harness, grant, noise_jpeg, plain_text


async def test_a_supervisor_sorts_a_case_with_one_tap_and_the_choice_is_kept(h: Harness) -> None:
    lane = h.district.lanes["CW-001"]
    await grant(h, 2001, "chief", "CW-001", "lane")
    await grant(h, 2003, "supervisor", lane.street_id, "street")
    chief = h.emulator.user(2001, first_name="Chief", language_code="en")
    supervisor = h.emulator.user(2003, first_name="Supervisor", language_code="zh-hans")
    for person in (chief, supervisor):
        await person.send_command("/help")
        await person.expect(contains="/report")
    resident = h.emulator.user(1001, first_name="R", language_code="en")
    await resident.send_photo(noise_jpeg(1), caption="Something is not right here, please look")
    await resident.send_location(*lane.representative_point)
    await resident.expect(contains="Please check your report")
    await resident.press("✅ Confirm")
    await resident.expect(contains="Your case number is")
    [case] = await h.cases()
    assert case.state == "triage" and case.category_id is None
    await resident.expect(contains=plain_text("en", "routed.triage", number=case.number))

    card = await supervisor.expect(contains=f"案件 {case.number}")
    assert "堆物堆料" in str(card.reply_markup)  # one button per category
    await supervisor.press("堆物堆料")
    await chief.expect(contains=f"Case {case.number}")
    await resident.expect(contains=f"Case {case.number} was sent to the lane chief")
    [case] = await h.cases()
    assert (case.state, case.category_id, case.assignee_id is not None) == (
        "dispatched",
        "duiwuduiliao",
        True,
    )
    assert [e.action for e in await h.events(case.id)] == [
        "submitted",
        "triaged",
        "categorised",
        "dispatched",
    ]
    # A second tap (or another supervisor's) is stale and changes nothing.
    await supervisor.press_callback(card.message_id, f"tri:{case.id}:xiaoguanggao")
    await h.emulator.wait_until(lambda: any(a.show_alert for a in supervisor.callback_answers))
    async with h.session() as session:
        text, n = await labels_csv(session)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert n == 1 and rows[0]["label"] == "duiwuduiliao"
    assert rows[0]["text"] == "Something is not right here, please look"


async def test_a_case_on_no_street_office_reaches_the_districts_admins(h: Harness) -> None:
    await grant(h, 2009, "admin")
    admin = h.emulator.user(2009, first_name="Admin", language_code="en")
    await admin.send_command("/help")
    await admin.expect(contains="/report")
    resident = h.emulator.user(1002, first_name="R", language_code="en")
    await resident.send_photo(noise_jpeg(2), caption="Something odd on the pavement")
    await resident.expect(contains="Where is it?")
    await resident.press("I can't share my location")
    await resident.expect(contains="Tell us in words where it is")
    await resident.send_text("Behind the old cinema near the market")
    await resident.expect(contains="Please check your report")
    await resident.press("✅ Confirm")
    await resident.expect(contains="Your case number is")
    [case] = await h.cases()
    assert case.state == "triage" and case.street_id is None
    card = await admin.expect(contains=f"Case {case.number}")
    assert "Behind the old cinema" in (card.text or "")
