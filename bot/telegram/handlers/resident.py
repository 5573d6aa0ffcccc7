"""The resident's report: photos, a description and a location, then a summary to confirm."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove

from bot.context import AppContext
from bot.domain.cases import MAX_DESCRIPTION, MAX_PHOTOS, CaseError, ReportDraft
from bot.domain.intake import submit_report
from bot.domain.routing.locate import LaneMatch, NoLane, OutsideDistrict
from bot.domain.text import MAX_ADDRESS, is_blank, visible
from bot.telegram.errors import alert_case_error
from bot.telegram.handlers.intake import photo_from_data, photo_to_data, receive_photo
from bot.telegram.keyboards import ReportAction, edit_keyboard, location_keyboard, summary_keyboard
from bot.telegram.outgoing import Outbox, Recipient
from bot.telegram.views import summary
from storage.cases import case_by_idempotency_key
from storage.models import Person

log = logging.getLogger(__name__)

LANE_PRESET = "lane_preset"


class Report(StatesGroup):
    photos = State()
    description = State()
    location = State()
    address = State()
    confirm = State()


class Step:
    """The next thing a draft needs, chosen from what it has."""

    @staticmethod
    async def next(state: FSMContext, me: Recipient, ctx: AppContext) -> None:
        data = await state.get_data()
        if not data["photos"] and not data["description"]:
            await state.set_state(Report.photos)
            me.say("report.ask_photo")
        elif not data["description"]:
            await state.set_state(Report.description)
            me.say("report.ask_description", n=len(data["photos"]), limit=MAX_PHOTOS)
        elif data.get("lat") is None and not data.get("lane_id") and not data.get("address"):
            await state.set_state(Report.location)
            me.say("report.ask_location", location_keyboard(me.language))
        else:
            await state.set_state(Report.confirm)
            version = int(data.get("summary_version", 0)) + 1
            ref = f"summary:{data['draft']}:{version}"
            await state.update_data(summary_version=version, summary_ref=ref)
            me.text(
                summary(me.language, ctx.district, data),
                summary_keyboard(me.language, data["draft"]),
                ref=ref,
            )


async def start_draft(state: FSMContext, **initial: Any) -> dict[str, Any]:
    """A fresh draft, keeping the lane preset from a street sign's QR code."""
    old = await state.get_data()
    draft: dict[str, Any] = {
        "draft": uuid.uuid4().hex[:16],
        "photos": [],
        "description": "",
        "albums": [],
        LANE_PRESET: old.get(LANE_PRESET),
    }
    preset = old.get(LANE_PRESET)
    if preset:
        draft |= {"lane_id": preset["lane_id"], "street_id": preset["street_id"]}
    draft |= initial
    await state.set_data(draft)
    return draft


async def report_command(message: Message, state: FSMContext, out: Outbox, person: Person) -> None:
    await start_draft(state)
    await state.set_state(Report.photos)
    out.to(person).say("report.ask_photo")


async def photo_received(
    message: Message, bot: Bot, state: FSMContext, ctx: AppContext, out: Outbox, person: Person
) -> None:
    me = out.to(person)
    # Download and check the photo before touching the database or the draft: on SQLite a
    # transaction holds the write lock, and a download can take seconds.
    received = await receive_photo(bot, ctx, message, me)
    if received is None:
        return
    photo, gps = received
    current = await state.get_state()
    data = await state.get_data() if current else await start_draft(state)
    if len(data["photos"]) >= MAX_PHOTOS:
        me.say("photo.too_many", limit=MAX_PHOTOS)
        return
    data["photos"].append(photo_to_data(photo))
    caption = (message.caption or "").strip()
    if not is_blank(caption) and not data["description"]:
        log.info("person %s: caption of %s characters", person.id, len(caption))
        if len(caption) > MAX_DESCRIPTION:
            me.say("report.description_too_long", n=len(caption), limit=MAX_DESCRIPTION)
        else:
            data["description"] = caption
    if gps is not None and data.get("lat") is None:
        _use_location(ctx, data, me, gps[0], gps[1], source="exif")
    album = message.media_group_id
    first_of_album = album is None or album not in data["albums"]
    if album is not None and first_of_album:
        data["albums"].append(album)
    await state.set_data(data)
    if first_of_album:
        await Step.next(state, me, ctx)
    elif await state.get_state() == Report.confirm.state:
        me.edit_text(
            summary(me.language, ctx.district, data),
            message_ref=data["summary_ref"],
            markup=summary_keyboard(me.language, data["draft"]),
        )


async def description_received(
    message: Message, state: FSMContext, ctx: AppContext, out: Outbox, person: Person
) -> None:
    me = out.to(person)
    text = (message.text or "").strip()
    if text.startswith("/"):
        me.say("report.unknown_command")
        return
    if len(text) > MAX_DESCRIPTION:
        me.say("report.description_too_long", n=len(text), limit=MAX_DESCRIPTION)
        return
    if is_blank(text):  # zero-width and direction marks alone are not a description
        log.info("person %s: empty description refused", person.id)
        me.say("report.description_empty")
        return
    log.info("person %s: description of %s characters", person.id, len(text))
    await state.update_data(description=text)
    await Step.next(state, me, ctx)


async def location_received(
    message: Message, state: FSMContext, ctx: AppContext, out: Outbox, person: Person
) -> None:
    me = out.to(person)
    point = message.venue.location if message.venue else message.location
    assert point is not None
    current = await state.get_state()
    if current is None or current.startswith("CaseInput"):
        data = await start_draft(state)
    else:
        data = await state.get_data()
    if not _use_location(ctx, data, me, point.latitude, point.longitude, source="telegram"):
        await state.set_data(data)
        await state.set_state(Report.location)
        return
    if message.venue:
        data["address"] = f"{message.venue.title}, {message.venue.address}"
    await state.set_data(data)
    me.say("report.location_taken", ReplyKeyboardRemove())
    await Step.next(state, me, ctx)


def _use_location(
    ctx: AppContext, data: dict[str, Any], me: Recipient, lat: float, lon: float, *, source: str
) -> bool:
    """Put a point on the draft if it is in the district; tell the person when it is not."""
    if lat == 0.0 and lon == 0.0:  # what a phone without a position fix sends
        log.info("location (0, 0) refused (%s)", source)
        me.say("report.location_null")
        return False
    found = ctx.locator.locate(lat, lon)
    if isinstance(found, OutsideDistrict):
        log.info("location outside the district refused (%s)", source)
        key = "report.location_outside" if source == "telegram" else "report.exif_outside"
        me.say(key, district=ctx.district.name(ctx.district, me.language))
        return False
    data |= {"lat": lat, "lon": lon, "location_source": source}
    if isinstance(found, LaneMatch):
        data |= {"lane_id": found.lane_id, "street_id": found.street_id}
    elif isinstance(found, NoLane):
        data |= {"lane_id": None, "street_id": found.street_id}
    if source == "exif":
        me.say("report.exif_location_used")
    return True


async def location_refused_or_typed(
    message: Message, state: FSMContext, ctx: AppContext, out: Outbox, person: Person
) -> None:
    me = out.to(person)
    text = (message.text or "").strip()
    if text == me.t("button.no_location"):
        await state.set_state(Report.address)
        me.say("report.ask_address", ReplyKeyboardRemove())
        return
    await _take_address(text, state, ctx, me)


async def address_received(
    message: Message, state: FSMContext, ctx: AppContext, out: Outbox, person: Person
) -> None:
    await _take_address((message.text or "").strip(), state, ctx, out.to(person))


async def _take_address(text: str, state: FSMContext, ctx: AppContext, me: Recipient) -> None:
    if len(visible(text)) < 2 or len(text) > MAX_ADDRESS or text.startswith("/"):
        me.say("report.address_invalid")
        return
    await state.update_data(address=text)
    me.say("report.address_taken", ReplyKeyboardRemove())
    await Step.next(state, me, ctx)


async def text_while_confirming(message: Message, out: Outbox, person: Person) -> None:
    out.to(person).say("report.use_buttons")


async def summary_button(
    query: CallbackQuery,
    callback_data: ReportAction,
    state: FSMContext,
    ctx: AppContext,
    out: Outbox,
    person: Person,
) -> None:
    me = out.to(person)
    data = await state.get_data()
    if data.get("draft") != callback_data.draft:
        key = f"{person.id}:{callback_data.draft}"
        existing = await case_by_idempotency_key(out.session, key)
        if existing is not None:
            await query.answer(me.t("report.already_submitted", number=existing.number))
        else:
            await query.answer(me.t("report.draft_gone"), show_alert=True)
        return
    message_id = query.message.message_id if query.message else None
    action = callback_data.action
    if action == "confirm":
        await _confirm(query, data, state, ctx, out, person)
        return
    await query.answer()
    if action == "cancel":
        await state.clear()
        me.say("report.cancelled", ReplyKeyboardRemove())
    elif action == "edit" and message_id is not None:
        me.edit_markup(message_id, edit_keyboard(me.language, callback_data.draft))
    elif action == "back" and message_id is not None:
        me.edit_markup(message_id, summary_keyboard(me.language, callback_data.draft))
    elif action == "desc":
        await state.set_state(Report.description)
        me.say("report.ask_new_description")
        await state.update_data(description="")
    elif action == "loc":
        await state.update_data(lat=None, lon=None, address=None, location_source=None)
        if data.get(LANE_PRESET) is None:
            await state.update_data(lane_id=None, street_id=None)
        await state.set_state(Report.location)
        me.say("report.ask_location", location_keyboard(me.language))
    elif action == "photos":
        await state.set_state(Report.photos)
        me.say("report.ask_more_photos", n=len(data["photos"]), limit=MAX_PHOTOS)


async def _confirm(
    query: CallbackQuery,
    data: dict[str, Any],
    state: FSMContext,
    ctx: AppContext,
    out: Outbox,
    person: Person,
) -> None:
    me = out.to(person)
    draft = ReportDraft(
        reporter_id=person.id,
        idempotency_key=f"{person.id}:{data['draft']}",
        description=data["description"],
        photos=[photo_from_data(p) for p in data["photos"]],
        lat=data.get("lat"),
        lon=data.get("lon"),
        address=data.get("address"),
        lane_id=data.get("lane_id"),
        street_id=data.get("street_id"),
    )
    try:
        routed = await submit_report(out.session, draft, reporter=person, now=out.now, desk=ctx)
    except CaseError as exc:
        await alert_case_error(query, exc, me)
        return
    await query.answer()
    if query.message is not None:
        me.edit_markup(query.message.message_id)
    case = routed.case
    me.say("report.created", ReplyKeyboardRemove(), number=case.number, case_id=case.id)
    await ctx.announce(out.session, routed, out.now)
    out.after_commit(state.clear)


def make_router() -> Router:
    """A fresh router with this area's handlers (one per dispatcher)."""
    router = Router(name="resident")
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")
    router.message.register(report_command, Command("report"))
    router.message.register(photo_received, F.photo | F.document)
    router.message.register(
        description_received, StateFilter(Report.photos, Report.description), F.text
    )
    router.message.register(location_received, F.location | F.venue)
    router.message.register(location_refused_or_typed, Report.location, F.text)
    router.message.register(address_received, Report.address, F.text)
    router.message.register(text_while_confirming, Report.confirm, F.text)
    router.callback_query.register(summary_button, ReportAction.filter())
    return router
