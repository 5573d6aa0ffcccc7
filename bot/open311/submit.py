"""POST requests: a checked report becomes a case, routed and announced as one from the chat.

The same `bot.domain.intake.submit_report`, then `AppContext.announce` (the chief's card …), in
one transaction with the outbox messages; only the category is the client's choice (its
service_code) instead of the text classifier's guess. The client is kept on the case's
`submitted` event (its id, not a person). A client is no person: a report from it has no
reporter, so none is told in a chat, and no "a chief's report on his own lane" applies.

Retries: a client that sends `device_id` may send the same report again (a timeout, a lost
answer) and gets the same case back (HTTP 200 instead of 201), not a second one. Two calls are
"the same" when client, device_id, local day and every field of the report are equal; the
device id itself is not stored, only a hash of it with the report (the case's token). Without
device_id every call makes a case (a repeat at the same place is still joined to the open
case as a duplicate, as in the chat).

A description longer than the chat's 2,000 characters (the spec allows 4,000) is shortened so
that the chief's card fits one Telegram message; the answer's service_notice says so.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.domain import cases
from bot.domain.cases import CaseError, ReportDraft
from bot.domain.intake import submit_report
from bot.domain.routing.classify import Classification, Classifier
from bot.i18n import plain
from bot.open311.errors import bad_request
from bot.open311.queries import request_by_number
from bot.open311.submission import Submission
from bot.open311.view import status_notes
from storage.cases import case_by_idempotency_key
from storage.models import Case, Open311Client

TOKEN_PREFIX = "o311:"
_TOKEN_HEX = 32


class ChosenService(Classifier):
    """The category the client chose (its service_code): the text classifier is not asked."""

    def __init__(self, base: Classifier, category_id: str) -> None:
        vars(self).update(vars(base))
        self.chosen = category_id

    def classify(self, text: str) -> Classification:
        reason = f"service_code {self.chosen} chosen in an Open311 client"
        return Classification(self.chosen, 1.0, "open311", (reason,))


@dataclass(frozen=True)
class Submitted:
    """The POST's answer: which case, its token, whether it is new, and a notice in words."""

    number: str
    token: str
    created: bool
    notice: str


def is_token(value: str) -> bool:
    return len(value) == _TOKEN_HEX and all(c in "0123456789abcdef" for c in value)


def token_for(client_id: int, sub: Submission, day: str) -> str:
    """Random, or with a device_id the same for the same report from it on the same day."""
    if sub.device_id is None:
        return secrets.token_hex(_TOKEN_HEX // 2)
    place = sub.place
    same = [
        client_id,
        sub.device_id,
        day,
        sub.category.id,
        sub.description,
        sub.media_url,
        place.lat,
        place.lon,
        place.address,
        place.lane_id,
        sorted(sub.answers.items()),
    ]
    return hashlib.sha256(json.dumps(same, ensure_ascii=False).encode()).hexdigest()[:_TOKEN_HEX]


def case_text(sub: Submission, lang: str) -> tuple[str, bool]:
    """The case's description: the client's words, then the answers and the photo link.

    (text, shortened): cut to the chat's limit, so that a chief's card fits one message.
    """
    extras = []
    if sub.answers.get("blocks_traffic") == "yes":
        extras.append(plain(lang, "open311.case.blocks_traffic"))
    if sub.media_url:
        extras.append(plain(lang, "open311.case.media", url=sub.media_url))
    tail = "\n".join(extras)
    room = cases.MAX_DESCRIPTION - (len(tail) + 1 if tail else 0)
    body = sub.description
    shortened = len(body) > room
    if shortened:
        body = body[: room - 1].rstrip() + "…"
    return "\n".join(part for part in (body, tail) if part), shortened


async def submit(ctx: AppContext, client: Open311Client, sub: Submission, lang: str) -> Submitted:
    now = ctx.clock.now()
    token = token_for(client.id, sub, now.astimezone(ctx.district.tz).date().isoformat())
    text, shortened = case_text(sub, lang)
    draft = ReportDraft(
        reporter_id=None,
        idempotency_key=TOKEN_PREFIX + token,
        description=text,
        lat=sub.place.lat,
        lon=sub.place.lon,
        address=sub.place.address,
        lane_id=sub.place.lane_id,
        street_id=sub.place.street_id,
        source="open311",
    )
    try:
        async with ctx.sessionmaker() as session, session.begin():
            try:
                routed = await submit_report(
                    session,
                    draft,
                    reporter=None,
                    now=now,
                    desk=ctx,
                    classifier=ChosenService(ctx.classifier, sub.category.id),
                    priority=1 if sub.answers.get("blocks_traffic") == "yes" else 0,
                    origin={"open311_client": client.id},
                )
            except CaseError as exc:
                raise bad_request("refused", reason=exc.code) from None
            await ctx.announce(session, routed, now)
            answer = await _answer(session, routed.case, token, routed.created, lang)
    except IntegrityError:
        # The same retry, at the same moment, won: answer with its case.
        async with ctx.sessionmaker() as session:
            existing = await case_by_idempotency_key(session, TOKEN_PREFIX + token)
            if existing is None:
                raise
            answer = await _answer(session, existing, token, False, lang)
    ctx.sender.wake()
    if shortened:
        limit = plain(lang, "open311.notice.shortened", limit=cases.MAX_DESCRIPTION)
        answer = Submitted(answer.number, answer.token, answer.created, f"{answer.notice} {limit}")
    return answer


async def _answer(
    session: AsyncSession, case: Case, token: str, created: bool, lang: str
) -> Submitted:
    found = await request_by_number(session, case.number)
    original = found[1] if found else ""
    return Submitted(case.number, token, created, status_notes(case, lang, original or None))
