"""Each CJK font the bot knows how to find (`bot.figures.fonts.FAMILIES`), installed for the tests.

The images the bot draws (street signs, digest charts) must come out right with whichever of
them a machine has, so their tests run once per font, each in turn made the one that
`bot.figures.fonts.find_cjk_font` finds. A font not installed is installed with apt-get when the
tests run as root; a test is skipped for a font only when that cannot be done, and says why.

A test module declares `@pytest.fixture(**EACH) def cjk_font(request, monkeypatch)` returning
`found_as(request.param, monkeypatch)`, and its tests ask for `cjk_font`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bot.figures import fonts


@cache
def apt_install(package: str) -> str | None:
    """`apt-get install package` as root, once per run; None when done, else why it could not."""
    if os.name != "posix" or os.geteuid() != 0:
        return "not root"
    apt = shutil.which("apt-get")
    if apt is None:
        return "no apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-q"]
    install += ["--no-install-recommends", package]
    for attempt in ("installed", "lists updated"):
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode == 0:
            return None
        if attempt == "installed":
            # A fresh machine may have no package lists yet.
            subprocess.run([apt, "update", "-q"], env=env, capture_output=True, timeout=600)
    return f"apt-get install failed: {done.stderr.strip().splitlines()[-1:]}"


def font_of(family: fonts.Family) -> Path:
    """Where `family` is installed (installing it if need be); skips the test if it cannot be."""
    found = family.installed()
    if found is None:
        why = apt_install(family.package)
        fonts.forget()
        found = family.installed()
        if found is None:
            pytest.skip(
                f"{family.name} is not installed and could not be ({why or 'not found after'}): "
                f"run `apt-get install {family.package}` to test the images with it"
            )
    return found


# For a test module's fixture: `@pytest.fixture(**EACH)`, one run per known font.
EACH: dict[str, Any] = {"params": fonts.FAMILIES, "ids": lambda family: family.package}


def found_as(family: fonts.Family, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`family` installed and made the font the bot finds (and uses when given none)."""
    path = font_of(family)
    monkeypatch.setattr(fonts, "find_cjk_font", lambda: path)
    return path


def any_font() -> Path:
    """The font the bot finds here, installing the recommended one if there is none: for tests
    of what does not depend on the font (the command line, the files written)."""
    found = fonts.find_cjk_font()
    if found is not None:
        return found
    return font_of(next(f for f in fonts.FAMILIES if f.package == fonts.APT_PACKAGE))
