"""The domain: lifecycle, intake, routing, SLA, access. No aiogram, no aiohttp."""
