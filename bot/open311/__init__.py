"""Open311 GeoReport v2: Suipai as one more channel that a city's 311 systems read and write.

`make_app(ctx)` is the aiohttp sub-application (see `bot.open311.app` for its endpoints and
docs/open311.md for the decisions); `python -m bot open311 --port P` serves it alone.
"""

from bot.open311.app import make_app

__all__ = ["make_app"]
