"""The sandbox end to end in a real browser: `python -m bot sandbox` in a subprocess, Debian's
chromium driven by Playwright, every persona played through the page as a person would.

The steps are tests in order, sharing one sandbox and one page. The report must work now;
later steps of the handling loop run when the bot has the feature (its texts are in the
catalogue) and are reported as skipped otherwise. Screenshots of each persona's chat go to
tests/artifacts/; with SANDBOX_DOCS_SCREENSHOT=1 the README's docs/sandbox.png (the chief's
chat with a new card) is retaken.
"""

from __future__ import annotations

import html
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.config import SAMPLE_DISTRICT_DIR
from bot.domain.district import load_district
from bot.domain.routing.locate import Locator
from bot.figures import fonts
from bot.i18n import has_key, t
from bot.sandbox.cast import cast_for
from tests.harness import jpeg

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE_WIDTH, PHONE_HEIGHT = 360, 740
CJK_FONT_PACKAGE = "fonts-noto-cjk"  # what Debian's chromium draws Chinese with, by choice
WAIT_MS = 15_000  # for the bot's answers; the page itself reacts in milliseconds
START_TIMEOUT_S = 90.0


def shown(lang: str, key: str, **params: object) -> str:
    """The first line of a catalogue text as the chat shows it: HTML tags gone, entities read."""
    first = t(lang, key, **params).splitlines()[0]
    return html.unescape(re.sub(r"<[^>]+>", "", first)).strip()


# --- set-up: chromium, the sandbox process, the page ---------------------------------------------


def _apt_install(*packages: str) -> str | None:
    """`apt-get install` as root; returns why it failed, or None."""
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            return f"`{' '.join(command)}` failed: {' '.join(tail)}"
    return None


def _install_chromium() -> str | None:
    """Install Debian's chromium once; returns why it cannot be had, or None when it is there.

    The colour emoji font comes along so that screenshots show the bot's emoji, not boxes;
    the page works without it. The CJK font too (see `_install_cjk_font`).
    """
    if CHROMIUM.exists():
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and cannot be installed here (needs root and apt-get)"
    problem = _apt_install("chromium", "fonts-noto-color-emoji", CJK_FONT_PACKAGE)
    if problem is not None and not CHROMIUM.exists():
        problem = _apt_install("chromium")  # the font is a nicety; the browser is not
    if CHROMIUM.exists():
        return None
    return problem or "apt-get installed no /usr/bin/chromium"


def _install_cjk_font() -> None:
    """A font for the page's Chinese, where chromium was there before: without one every
    character is an empty box in the screenshots (test_9 says so)."""
    if fonts.find_cjk_font() is None and os.geteuid() == 0 and shutil.which("apt-get"):
        _apt_install(CJK_FONT_PACKAGE)
        fonts.forget()


@pytest.fixture(scope="session")
def chromium() -> str:
    pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    problem = _install_chromium()
    if problem is not None:
        pytest.skip(f"no browser for the sandbox test: {problem}")
    _install_cjk_font()
    return str(CHROMIUM)


@dataclass
class Sandbox:
    url: str
    bot_api: str  # the emulated Bot API as the bot's own token sees it: bot_api + "sendMessage"
    process: subprocess.Popen[str]

    def call(self, method: str, **params: Any) -> Any:
        """Act as the bot: one Bot API call to the emulator."""
        request = urllib.request.Request(
            self.bot_api + method,
            data=json.dumps(params).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
        assert body["ok"], body
        return body["result"]


def _announced(process: subprocess.Popen[str]) -> tuple[str, str]:
    """Wait for the lines where the sandbox says where it serves (or for it to die)."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put("")  # end of output: the process exited

    threading.Thread(target=read, daemon=True).start()
    page = api = ""
    while not (page and api):
        try:
            line = lines.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            raise AssertionError(f"the sandbox said nothing within {START_TIMEOUT_S}s") from None
        if not line:
            raise AssertionError(f"the sandbox exited with {process.wait()} before serving")
        if match := re.search(r"open (http://\S+)", line):
            page = match.group(1)
        if match := re.search(r"Bot API: (http://\S+/)<method>", line):
            api = match.group(1)
    return page, api


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """`python -m bot sandbox --port 0` on a fresh SQLite file, as a user would start it."""
    folder = tmp_path_factory.mktemp("sandbox")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "sandbox.log"  # the sandbox's own log, to read when a step fails
    env = os.environ | {
        "BOT_TOKEN": "",
        "DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'suipai.db'}",
        "MEDIA_DIR": str(folder / "media"),
        "DISTRICT_DIR": str(SAMPLE_DISTRICT_DIR),
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "sandbox", "--port", "0"],
            cwd=folder,  # the sandbox's own data is data/sandbox/ here, fresh
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        try:
            yield Sandbox(*_announced(process), process)
        finally:
            process.send_signal(signal.SIGINT)  # Ctrl+C: the way a person stops it
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class Play:
    """The page and what the steps so far have achieved."""

    page: Any
    sandbox: Sandbox
    passed: set[str] = field(default_factory=set)
    case_number: str = ""

    def needs(self, step: str) -> None:
        if step not in self.passed:
            pytest.skip(f"needs the step '{step}', which did not pass")

    def persona(self, key: str) -> None:
        self.page.click(f'#personas button[data-persona="{key}"]')
        self.page.wait_for_selector(f'#chat[data-persona="{key}"]')

    def bot_message(self, text: str) -> Any:
        return self.page.locator("#chat .msg.bot", has_text=text).last

    def images_loaded(self) -> None:
        """Every photo in the chat has arrived and decoded (none is a broken image)."""
        self.page.wait_for_function(
            "() => [...document.querySelectorAll('#chat img')]"
            ".every(i => i.complete && i.naturalWidth > 0)",
            timeout=WAIT_MS,
        )

    def screenshot(self, name: str) -> None:
        self.page.screenshot(path=str(ARTIFACTS / f"sandbox-{name}.png"))


@pytest.fixture(scope="module")
def play(chromium: str, sandbox: Sandbox) -> Iterator[Play]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(
            viewport={"width": PHONE_WIDTH, "height": PHONE_HEIGHT},
            device_scale_factor=2,
            locale="zh-CN",
            is_mobile=True,
            has_touch=True,
        )
        page = context.new_page()
        # The page must need nothing from elsewhere: any such request fails the test.
        outside: list[str] = []
        page.on(
            "request",
            lambda r: outside.append(r.url) if not r.url.startswith(sandbox.url[:-1]) else None,
        )
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(sandbox.url)
        expect(page.locator("#personas button")).to_have_count(5)
        yield Play(page, sandbox)
        browser.close()
        assert outside == [], f"the page fetched from elsewhere: {outside}"
        assert errors == [], f"the page raised: {errors}"


def _click_on_lane(play: Play, lane_id: str, fraction: float) -> None:
    """Click the drawn lane itself, at `fraction` of its length, as a person would."""
    point = play.page.evaluate(
        """([laneId, fraction]) => {
            const path = document.querySelector(`#map path[data-lane="${laneId}"]`);
            const p = path.getPointAtLength(path.getTotalLength() * fraction);
            const svgPoint = path.ownerSVGElement.createSVGPoint();
            svgPoint.x = p.x;
            svgPoint.y = p.y;
            const screen = svgPoint.matrixTransform(path.getScreenCTM());
            return {x: screen.x, y: screen.y};
        }""",
        [lane_id, fraction],
    )
    play.page.mouse.click(point["x"], point["y"])


def _quiet_spot(lane_id: str) -> float:
    """A place along the lane that no other lane is near, so a click a few metres off still
    lands on it."""
    district = load_district(SAMPLE_DISTRICT_DIR)
    locator = Locator(district)
    lane = district.lanes[lane_id]
    for fraction in (0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8):
        point = lane.geometry.interpolate(fraction, normalized=True)
        near = locator.lanes_near(point.y, point.x, 60.0)
        if [m.lane_id for m in near] == [lane_id]:
            return fraction
    raise AssertionError(f"no spot on {lane_id} away from other lanes")


def _upload(play: Play, caption: str, color: tuple[int, int, int]) -> None:
    play.page.fill("#text", caption)
    photo = {"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": jpeg(color)}
    play.page.set_input_files("#photo-input", files=[photo])


# --- the loop, step by step ----------------------------------------------------------------------


def test_1_resident_reports_with_a_photo_and_a_clicked_location(play: Play) -> None:
    from playwright.sync_api import expect

    page = play.page
    district = load_district(SAMPLE_DISTRICT_DIR)
    lane_id = cast_for(district).lane_id
    play.persona("resident_zh")
    expect(page.locator("#chat .empty")).to_be_visible()

    page.fill("#text", "/start")
    page.click("#send")
    expect(
        play.bot_message(shown("zh", "start.greeting", district=district.name_zh))
    ).to_be_visible()

    _upload(play, "楼道口堆放杂物，影响通行", (200, 60, 40))
    expect(page.locator("#chat .msg.user img")).to_have_count(1)
    expect(play.bot_message(shown("zh", "report.ask_location"))).to_be_visible()

    # The bot's reply keyboard asks for the location; the page opens the drawn district.
    page.locator("#keyboard button", has_text=t("zh", "button.send_location")).click()
    expect(page.locator("#map-panel")).to_be_visible()
    expect(page.locator(f'#map path[data-lane="{lane_id}"]')).to_have_count(1)
    expect(page.locator("#map path.lane")).to_have_count(len(district.lanes))
    play.screenshot("resident_zh-map")
    _click_on_lane(play, lane_id, _quiet_spot(lane_id))
    expect(page.locator("#map-panel")).to_be_hidden()
    expect(page.locator("#chat .msg.user .pin")).to_have_count(1)

    summary = play.bot_message(shown("zh", "report.summary", photos=1, description="", place=""))
    expect(summary).to_contain_text("楼道口堆放杂物")
    expect(summary).to_contain_text(district.lanes[lane_id].name_zh)
    summary.locator("button", has_text=t("zh", "button.confirm")).click()

    created = play.bot_message("CY-")
    expect(created).to_contain_text(re.compile(r"CY-\d{8}-\d{4}"))
    match = re.search(r"CY-\d{8}-\d{4}", created.inner_text())
    assert match is not None
    play.case_number = match.group()
    # Confirmed: the summary's buttons are gone (edited in place).
    expect(summary.locator("button")).to_have_count(0)
    play.screenshot("resident_zh-reported")
    play.passed.add("report")


def test_2_chief_gets_the_card(play: Play) -> None:
    from playwright.sync_api import expect

    play.needs("report")
    if not has_key("zh", "card.text"):
        pytest.skip("the bot sends no case cards yet (no card.text in the catalogue)")
    play.persona("chief")
    card = play.bot_message(f"案件 {play.case_number}")
    expect(card).to_be_visible()
    expect(card).to_contain_text("楼道口堆放杂物")
    # The card comes with the resident's photo and the place, drawn with a pin.
    expect(play.page.locator("#chat .msg.bot img").first).to_be_visible()
    expect(play.page.locator("#chat .msg.bot .pin").first).to_be_visible()
    play.screenshot("chief-card")
    if os.environ.get("SANDBOX_DOCS_SCREENSHOT"):
        play.page.screenshot(path=str(ROOT / "docs" / "sandbox.png"))
    play.passed.add("card")


def test_3_chief_accepts_and_resolves_with_a_photo(play: Play) -> None:
    from playwright.sync_api import expect

    play.needs("card")
    if not (has_key("zh", "card.button.accept") and has_key("zh", "card.button.resolve")):
        pytest.skip("the card has no Accept/Resolve buttons yet")
    play.persona("chief")
    card = play.bot_message(f"案件 {play.case_number}")
    card.locator("button", has_text=t("zh", "card.button.accept")).click()
    resolve = card.locator("button", has_text=t("zh", "card.button.resolve"))
    expect(resolve).to_be_visible()
    expect(card.locator("button", has_text=t("zh", "card.button.accept"))).to_have_count(0)
    resolve.click()
    expect(
        play.bot_message(shown("zh", "card.ask_resolve", number=play.case_number))
    ).to_be_visible()
    _upload(play, "杂物已清运，楼道畅通", (40, 160, 90))
    expect(play.bot_message(shown("zh", "card.resolved", number=play.case_number))).to_be_visible()
    expect(play.page.locator("#chat .msg.user img")).to_have_count(1)
    play.screenshot("chief-resolved")
    play.passed.add("resolved")


def test_4_resident_rates_five(play: Play) -> None:
    from playwright.sync_api import expect

    play.needs("resolved")
    if not has_key("zh", "rate.thanks"):
        pytest.skip("residents cannot rate yet (no rate.thanks in the catalogue)")
    play.persona("resident_zh")
    resolved = play.bot_message(shown("zh", "progress.resolved", number=play.case_number, note=""))
    expect(resolved).to_be_visible()
    # The after photo arrives too.
    expect(play.page.locator("#chat .msg.bot img").first).to_be_visible()
    resolved.locator("button", has_text="⭐⭐⭐⭐⭐").click()
    expect(play.bot_message(shown("zh", "rate.thanks", stars=5))).to_be_visible()
    play.screenshot("resident_zh-rated")
    play.passed.add("rated")


def test_5_supervisor_asks_for_the_digest(play: Play) -> None:
    from playwright.sync_api import expect

    play.needs("report")
    command = next((c for c in ("digest", "stats") if has_key("zh", f"command.{c}")), None)
    if command is None:
        pytest.skip("the bot has no /digest or /stats command yet")
    play.persona("supervisor")
    before = play.page.locator("#chat .msg.bot").count()
    play.page.fill("#text", f"/{command}")
    play.page.click("#send")
    expect(play.page.locator("#chat .msg.user", has_text=f"/{command}")).to_be_visible()
    expect(play.page.locator("#chat .msg.bot")).not_to_have_count(before)
    answer = play.page.locator("#chat .msg.bot").last
    expect(answer).not_to_contain_text(shown("zh", "input.unknown_command"))
    play.images_loaded()  # a digest chart, if it comes as a photo
    play.screenshot("supervisor-digest")
    play.passed.add("digest")


def test_6_every_persona_has_its_screen(play: Play) -> None:
    """A screenshot of each chat, and what each must show whatever the loop reached."""
    from playwright.sync_api import expect

    play.needs("report")
    for key in ("resident_zh", "resident_en", "chief", "officer", "supervisor"):
        play.persona(key)
        tab = play.page.locator(f'#personas button[data-persona="{key}"]')
        expect(tab).to_have_attribute("aria-selected", "true")
        expect(tab.locator(".badge")).to_have_count(0)  # opening a chat reads it
        play.images_loaded()
        play.screenshot(key)
    play.persona("resident_zh")
    expect(play.page.locator("#chat .msg.user img").first).to_be_visible()
    expect(play.bot_message(play.case_number)).to_be_visible()


def test_7_english_page_and_resident(play: Play) -> None:
    from playwright.sync_api import expect

    page = play.page
    page.click("#lang")
    expect(page.locator("#send")).to_have_text("Send")
    play.persona("resident_en")
    tab = page.locator('#personas button[data-persona="resident_en"]')
    expect(tab).to_contain_text("Resident (English)")
    page.fill("#text", "/help")
    page.press("#text", "Enter")
    help_text = page.locator("#chat .msg.bot").first
    expect(help_text).to_be_visible()
    # As in Telegram, a command in the bot's text is tappable and sends it.
    help_text.locator(".command", has_text="/my").first.click()
    expect(page.locator("#chat .msg.user", has_text="/my")).to_be_visible()
    expect(page.locator("#chat .msg.bot")).not_to_have_count(1)  # and the bot answered
    play.screenshot("resident_en")
    page.click("#lang")
    expect(page.locator("#send")).to_have_text("发送")


def test_8_whatever_the_bot_sends_is_drawn_safely(play: Play) -> None:
    """Messages no handler sends today, sent straight to the emulator as the bot: HTML
    entities (never parsed as HTML), an edit, an album, a location, a reply keyboard, a
    deletion. The page must draw them all from the emulator's records alone."""
    from playwright.sync_api import expect

    page, bot = play.page, play.sandbox
    officer = 3001  # the cast's officer, who has started the bot (see bot/sandbox/cast.py)
    play.persona("officer")
    hostile = (
        '<b>Bold <i>both</i></b> &lt;img src=x onerror="window.hacked=1"&gt; '
        '<a href="https://example.org/x">a link</a> <a href="javascript:window.hacked=2">bad</a> '
        "<tg-spoiler>secret</tg-spoiler> <code>code()</code>"
    )
    sent = bot.call("sendMessage", chat_id=officer, text=hostile, parse_mode="HTML")
    bubble = page.locator(f'#chat .msg[data-id="{sent["message_id"]}"]')
    expect(bubble.locator("strong")).to_have_text("Bold both")
    expect(bubble.locator("strong em")).to_have_text("both")
    expect(bubble).to_contain_text('<img src=x onerror="window.hacked=1">')
    expect(bubble.locator("img")).to_have_count(0)
    expect(bubble.locator('a[href="https://example.org/x"]')).to_have_text("a link")
    expect(bubble.locator("a", has_text="bad")).to_have_count(0)  # a javascript: link is text
    expect(bubble.locator(".spoiler")).to_have_text("secret")
    expect(bubble.locator("code")).to_have_text("code()")
    assert page.evaluate("window.hacked") is None

    bot.call("editMessageText", chat_id=officer, message_id=sent["message_id"], text="Changed.")
    expect(bubble).to_contain_text("Changed.")
    expect(bubble).to_contain_text(t("zh", "sandbox.edited"))

    photos = [m["photo"]["full_id"] for m in _chat(play, "chief") if m.get("photo")][:2]
    assert len(photos) == 2, "the earlier steps left fewer than two photos to re-send"
    album = bot.call(
        "sendMediaGroup",
        chat_id=officer,
        media=[
            {"type": "photo", "media": photos[0], "caption": "Two at once"},
            {"type": "photo", "media": photos[1]},
        ],
    )
    grouped = page.locator(f'#chat .msg[data-id="{album[0]["message_id"]}"]')
    expect(grouped.locator("img")).to_have_count(2)
    expect(grouped).to_contain_text("Two at once")
    located = bot.call("sendLocation", chat_id=officer, latitude=39.9236, longitude=116.443)
    expect(page.locator(f'#chat .msg[data-id="{located["message_id"]}"] .pin')).to_have_count(1)

    keyboard = {"keyboard": [[{"text": "Here", "request_location": True}], ["Plain"]]}
    bot.call("sendMessage", chat_id=officer, text="Pick one", reply_markup=keyboard)
    expect(page.locator("#keyboard button")).to_have_count(2)
    page.locator("#keyboard button", has_text="Plain").click()
    expect(page.locator("#chat .msg.user", has_text="Plain")).to_be_visible()
    bot.call("sendMessage", chat_id=officer, text="Done", reply_markup={"remove_keyboard": True})
    expect(page.locator("#keyboard")).to_be_hidden()

    bot.call("deleteMessage", chat_id=officer, message_id=sent["message_id"])
    expect(bubble).to_have_count(0)
    play.images_loaded()
    play.screenshot("officer-anything")


def test_9_the_pages_chinese_is_drawn_with_a_font(play: Play) -> None:
    """Two different characters in the chat's font look different. Without a font for Chinese
    both are the same empty box ("tofu"), and so is every Chinese word in the screenshots."""
    drawn = play.page.evaluate(
        """(chars) => {
            const font = getComputedStyle(document.querySelector('#chat')).fontFamily;
            const canvas = document.createElement('canvas');
            canvas.width = canvas.height = 64;
            const context = canvas.getContext('2d', {willReadFrequently: true});
            return chars.map((ch) => {
                context.clearRect(0, 0, 64, 64);
                context.font = `48px ${font}`;
                context.textBaseline = 'top';
                context.fillText(ch, 8, 8);
                const alpha = context.getImageData(0, 0, 64, 64).data.filter((_, i) => i % 4 == 3);
                return Array.from(alpha).join(',');
            });
        }""",
        ["街", "巷", "\U0010fffd"],
    )
    street, lane, missing = drawn
    assert street != lane and missing not in (street, lane), (
        f"the page draws Chinese as empty boxes: no CJK font (`apt-get install {CJK_FONT_PACKAGE}`)"
    )


def _chat(play: Play, persona: str) -> list[dict[str, Any]]:
    url = f"{play.sandbox.url}api/personas/{persona}/messages"
    with urllib.request.urlopen(url, timeout=10) as response:
        messages: list[dict[str, Any]] = json.load(response)["messages"]
    return messages
