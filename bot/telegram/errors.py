"""A refused step told to the person who tried it: one way from a `CaseError` to their words.

The domain names why it refused (`CaseError.code`, with details such as a limit); the message
is the catalogue's `error.<code>` in the reader's language, the details filled in.
"""

from __future__ import annotations

from aiogram.types import CallbackQuery

from bot.domain.cases import CaseError
from bot.telegram.outgoing import Recipient


def case_error_text(exc: CaseError, me: Recipient) -> str:
    """Why the step was refused, in `me`'s language."""
    return me.t(f"error.{exc.code}", **exc.details)


async def alert_case_error(query: CallbackQuery, exc: CaseError, me: Recipient) -> None:
    """Answer a button press with why it was refused, as an alert the presser must close."""
    await query.answer(case_error_text(exc, me), show_alert=True)
