"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, and small page helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",  # the fake microphone beeps
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--headless",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def open_client(browser: Browser, base_url: str, name: str, world: str = "plaza") -> Page:
    """A fresh browser context (its own microphone and audio context) that joins `world` as `name`."""
    context = await browser.new_context(viewport={"width": 1100, "height": 760})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(f"{base_url}/?name={name}&world={world}&autojoin=1")
    await until(page, "hubbub.state.status === 'joined'", timeout=30)
    return page


async def until(page: Page, expression: str, timeout: float = 20.0, interval: float = 0.25) -> Any:
    """Poll a JS expression in the page until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await page.evaluate(f"() => {expression}")
        if last:
            return last
        await asyncio.sleep(interval)
    state = await page.evaluate(
        "() => JSON.stringify({status: hubbub.state.status, error: hubbub.state.error, "
        "errors: hubbub.state.errors, slots: hubbub.state.slots, levels: hubbub.levels(), "
        "mixed: hubbub.mixedLevel(), pose: hubbub.state.pose, avatars: hubbub.avatars()})"
    )
    raise AssertionError(f"timed out waiting for {expression!r}; page state: {state}")


async def walk(page: Page, x: float, z: float, timeout: float = 60.0) -> None:
    """Walk the page's avatar to (x, z). moveTo resolves false when the server corrects the pose (e.g. a
    speed-limit clamp on a loaded machine); then walk on from wherever the server put us."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            pose = await page.evaluate("hubbub.state.pose")
            raise AssertionError(f"could not walk to ({x}, {z}): at {pose}")
        if await asyncio.wait_for(page.evaluate(f"hubbub.moveTo({x}, {z})"), left):
            return
