"""Buttons: callback data factories (ids only, re-checked on the server) and keyboards."""

from __future__ import annotations

from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)
from pydantic import Field

from bot.domain.district import District
from bot.domain.lifecycle import CARD_ACTIONS, Action, Side, State, offers
from bot.i18n import t

# A database id as a button carries it: a forged payload outside this range (a huge number
# PostgreSQL would refuse, zero, a negative) does not parse, so no handler ever sees it.
CaseId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class ReportAction(CallbackData, prefix="rep"):
    """A button on a draft report's summary; `draft` ties it to one draft."""

    action: str  # confirm | edit | cancel | desc | loc | photos | back
    draft: str


class CaseAction(CallbackData, prefix="case"):
    """A reporter's button on a case they follow."""

    action: str  # note | photo | withdraw | withdraw_yes | withdraw_no
    case_id: CaseId


class LanguageChoice(CallbackData, prefix="lang"):
    lang: str


def _button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def summary_keyboard(lang: str, draft: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(t(lang, "button.confirm"), ReportAction(action="confirm", draft=draft))],
            [
                _button(t(lang, "button.edit"), ReportAction(action="edit", draft=draft)),
                _button(t(lang, "button.cancel"), ReportAction(action="cancel", draft=draft)),
            ],
        ]
    )


def edit_keyboard(lang: str, draft: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(
                    t(lang, "button.edit_description"), ReportAction(action="desc", draft=draft)
                ),
                _button(t(lang, "button.edit_location"), ReportAction(action="loc", draft=draft)),
            ],
            [
                _button(t(lang, "button.add_photos"), ReportAction(action="photos", draft=draft)),
                _button(t(lang, "button.back"), ReportAction(action="back", draft=draft)),
            ],
        ]
    )


def location_keyboard(lang: str) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=t(lang, "button.send_location"), request_location=True)],
            [KeyboardButton(text=t(lang, "button.no_location"))],
        ],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def case_keyboard(lang: str, case_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(t(lang, "button.add_note"), CaseAction(action="note", case_id=case_id)),
                _button(t(lang, "button.add_photo"), CaseAction(action="photo", case_id=case_id)),
            ],
            [_button(t(lang, "button.withdraw"), CaseAction(action="withdraw", case_id=case_id))],
        ]
    )


def withdraw_keyboard(lang: str, case_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(
                    t(lang, "button.withdraw_yes"),
                    CaseAction(action="withdraw_yes", case_id=case_id),
                ),
                _button(
                    t(lang, "button.withdraw_no"), CaseAction(action="withdraw_no", case_id=case_id)
                ),
            ]
        ]
    )


def language_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button("中文", LanguageChoice(lang="zh")),
                _button("English", LanguageChoice(lang="en")),
            ]
        ]
    )


class TriagePick(CallbackData, prefix="tri"):
    """A supervisor's one-tap category for a case in triage."""

    case_id: CaseId
    category: str


def triage_keyboard(lang: str, district: District, case_id: int) -> InlineKeyboardMarkup:
    """Every category, two to a row, in the district file's order."""
    buttons = [
        _button(district.name(c, lang), TriagePick(case_id=case_id, category=c.id))
        for c in district.categories.values()
    ]
    return InlineKeyboardMarkup(
        inline_keyboard=[buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    )


class CardAction(CallbackData, prefix="card"):
    """A button on an assignment card; the server re-checks actor and state on every press."""

    action: str  # accept | resolve | whistle | transfer | reject | duty | back
    case_id: CaseId


class WhistlePick(CallbackData, prefix="whi"):
    case_id: CaseId
    department: str


class TransferPick(CallbackData, prefix="trf"):
    case_id: CaseId
    lane: str  # a lane id, or "-" for the street office's triage


class RateAction(CallbackData, prefix="rate"):
    """The resident's rating: 1–5 stars, or 0 for "not fixed"."""

    case_id: CaseId
    stars: Annotated[int, Field(ge=0, le=5)]


# The button of each card action, as cards carry it ("duty" for report_for_duty), and back.
CARD_BUTTON: dict[Action, str] = {
    a: "duty" if a == Action.REPORT_FOR_DUTY else a.value for a in CARD_ACTIONS
}
CARD_PRESS: dict[str, Action] = {button: action for action, button in CARD_BUTTON.items()}
# Which buttons a card shows, by the side of the reader and the case's state: what the
# lifecycle offers that side in that state (`bot.domain.lifecycle.offers`).
CARD_BUTTONS: dict[tuple[str, str], tuple[str, ...]] = {
    (side, state): tuple(CARD_BUTTON[a] for a in offers(side, state))
    for side in Side
    for state in State
    if offers(side, state)
}


def card_keyboard(lang: str, side: str, state: str, case_id: int) -> InlineKeyboardMarkup | None:
    actions = CARD_BUTTONS.get((side, state), ())
    if not actions:
        return None
    buttons = [
        _button(t(lang, f"card.button.{a}"), CardAction(action=a, case_id=case_id)) for a in actions
    ]
    return InlineKeyboardMarkup(
        inline_keyboard=[buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    )


def whistle_keyboard(lang: str, district: District, case_id: int) -> InlineKeyboardMarkup:
    rows = [
        [_button(district.name(d, lang), WhistlePick(case_id=case_id, department=d.id))]
        for d in district.departments.values()
    ]
    rows.append([_button(t(lang, "button.back"), CardAction(action="back", case_id=case_id))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def transfer_keyboard(
    lang: str, district: District, case_id: int, lane_ids: list[str]
) -> InlineKeyboardMarkup:
    buttons = [
        _button(
            district.name(district.lanes[lane_id], lang),
            TransferPick(case_id=case_id, lane=lane_id),
        )
        for lane_id in lane_ids
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([_button(t(lang, "card.to_triage"), TransferPick(case_id=case_id, lane="-"))])
    rows.append([_button(t(lang, "button.back"), CardAction(action="back", case_id=case_id))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def rating_keyboard(lang: str, case_id: int) -> InlineKeyboardMarkup:
    stars = [_button("⭐" * n, RateAction(case_id=case_id, stars=n)) for n in range(5, 0, -1)]
    return InlineKeyboardMarkup(
        inline_keyboard=[
            stars[:2],
            stars[2:],
            [_button(t(lang, "rate.not_fixed"), RateAction(case_id=case_id, stars=0))],
        ]
    )


class ForgetAction(CallbackData, prefix="fgt"):
    """The resident's answer to /forget; `nonce` ties it to that one question."""

    action: str  # yes | no
    nonce: str


def forget_keyboard(lang: str, nonce: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(t(lang, "forget.button_yes"), ForgetAction(action="yes", nonce=nonce))],
            [_button(t(lang, "forget.button_no"), ForgetAction(action="no", nonce=nonce))],
        ]
    )
