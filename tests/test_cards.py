"""The assignment cards keep what chats and stored conversations already hold: their buttons
(now derived from the lifecycle's table) and the names their typed answers are stored under."""

from __future__ import annotations

from bot.telegram.handlers.cards import CardInput
from bot.telegram.keyboards import CARD_BUTTONS, CARD_PRESS

# bot/telegram/keyboards.py before the buttons were derived from bot/domain/lifecycle.py.
OLD_CARD_BUTTONS = {
    ("chief", "dispatched"): ("accept", "whistle", "transfer", "reject"),
    ("chief", "accepted"): ("resolve", "whistle", "transfer", "reject"),
    ("department", "dispatched"): ("accept", "transfer", "reject"),
    ("department", "whistled"): ("duty",),
    ("department", "accepted"): ("resolve",),
    ("supervisor", "triage"): ("transfer", "reject"),
    ("supervisor", "dispatched"): ("accept", "whistle", "transfer", "reject"),
    ("supervisor", "accepted"): ("resolve", "whistle", "transfer", "reject"),
    ("supervisor", "whistled"): ("duty",),
}


def test_each_card_shows_the_buttons_it_showed() -> None:
    assert CARD_BUTTONS == OLD_CARD_BUTTONS
    pressed = {b for buttons in OLD_CARD_BUTTONS.values() for b in buttons}
    assert set(CARD_PRESS) == pressed  # every button a card carries is understood


def test_a_typed_answer_is_stored_under_the_name_it_had() -> None:
    """A chief typing a reason while the bot is upgraded still reaches the same step."""
    assert [s.state for s in CardInput.__all_states__] == [
        "HandlerInput:resolve",
        "HandlerInput:reject",
        "HandlerInput:transfer",
    ]
