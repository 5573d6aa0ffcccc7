"""A Telegram Bot API emulator over HTTP, for tests, benchmarks and the sandbox."""
