"""The Telegram adapter: middlewares, the one sender, keyboards, views, handlers."""
