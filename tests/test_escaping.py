"""What a resident types is shown exactly as typed: "A & B <x>" never as "A &amp; B <x>".

Every text goes out as Telegram HTML, so a resident's words are escaped once on the way in;
a piece of the bot's own HTML placed into another text (the place in the summary, the card and
/case) must not be escaped again.
"""

from __future__ import annotations

from bot.i18n import t
from tests.harness import Harness, grant, jpeg, plain_text
from tests.test_handling_loop import cast, first_lane

DESCRIPTION = "胡同口堆物堆料 A & B <x>"  # 堆物堆料: the lane chief's, so the chief gets the card
ADDRESS = "A & B <x> 3号楼北侧"
OFFICER = 2009


async def test_a_description_shows_as_typed_in_the_summary_the_card_and_case(h: Harness) -> None:
    people = await cast(h)
    resident, chief = people["resident"], people["chief"]
    _lane, lat, lon = first_lane(h)
    await resident.send_photo(jpeg(), caption=DESCRIPTION)
    await resident.send_location(lat, lon)
    summary = await resident.expect(contains="照片：1 张")
    assert f"问题：{DESCRIPTION}\n" in (summary.text or "")
    await resident.press(t("zh", "button.confirm"))
    await resident.expect(contains="CY-")
    [case] = await h.cases()
    assert case.description == DESCRIPTION

    card = await chief.expect(contains=f"案件 {case.number}")
    assert f"问题：{DESCRIPTION}\n" in (card.text or "")
    await resident.send_command("/case", case.number)
    detail = await resident.expect(contains=f"案件 {case.number}\n状态")
    assert f"问题：{DESCRIPTION}\n" in (detail.text or "")


async def test_a_typed_address_shows_as_typed_in_the_summary_the_card_and_case(
    h: Harness,
) -> None:
    await grant(h, OFFICER, "officer", "gongdian", "department")  # 路灯: the power company's
    officer = h.emulator.user(OFFICER, first_name="赵师傅", language_code="zh-hans")
    await officer.send_command("/start")
    await officer.expect(contains="随拍即办")
    resident = h.emulator.user(1001, first_name="王芳", language_code="zh-hans")
    place = f"位置：“{ADDRESS}”（文字地址）\n"

    await resident.send_photo(jpeg(), caption="路灯不亮")
    await resident.expect(contains=plain_text("zh", "report.ask_location").splitlines()[0])
    await resident.press(t("zh", "button.no_location"))
    await resident.send_text(ADDRESS)
    summary = await resident.expect(contains="照片：1 张")
    assert place in (summary.text or "")
    await resident.press(t("zh", "button.confirm"))
    await resident.expect(contains="CY-")
    [case] = await h.cases()
    assert case.address == ADDRESS

    card = await officer.expect(contains=f"案件 {case.number}")
    assert place in (card.text or "")
    await resident.send_command("/case", case.number)
    detail = await resident.expect(contains=f"案件 {case.number}\n状态")
    assert place in (detail.text or "")
