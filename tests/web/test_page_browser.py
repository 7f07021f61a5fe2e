"""The live page in a real headless Chromium against a running site: it shows the
connectors, updates when a car arrives (server-sent events, no reload), and stays
readable on a phone. Screenshots go to test-artifacts/ (kept, gitignored)."""
from __future__ import annotations

from tests.web.cdp import Browser, artifacts_dir
from tests.web.conftest import VIEWER

ROWS = "document.querySelectorAll('#connectors tbody tr').length"


def _row(key: str, what: str = "innerText") -> str:
    return "(document.querySelector('#connectors tr[data-key=\"%s\"]') || {}).%s || ''" % (key, what)


async def test_the_page_shows_the_site_and_updates_when_a_car_arrives(site):
    out = artifacts_dir()
    browser = await Browser().start()
    try:
        await browser.send("Network.enable")
        await browser.send("Network.setExtraHTTPHeaders", headers=VIEWER)
        await browser.send("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1,
                           mobile=False)
        await browser.send("Page.enable")
        await browser.send("Page.navigate", url=site.url + "/")
        assert await browser.wait_for(ROWS + " === 6"), await browser.evaluate(ROWS)
        assert await browser.wait_for("document.getElementById('link').textContent === 'live'")
        assert await browser.evaluate("document.getElementById('site').textContent") == "Site demo"
        assert await browser.evaluate("document.querySelectorAll('#phases .phase').length") == 3
        assert "no car" in await browser.evaluate(_row("CP001/1"))
        await browser.screenshot(out / "page-desktop-before.png")

        # A fleet car arrives at CP001: the row fills in without a reload.
        assert await site.fleet.plug_in("CP001", 1, "FLEET01", 30000, 16)
        text = await browser.wait_for("(function(){var t=%s; return t.indexOf('FL***01') >= 0 && "
                                      "t.indexOf('Fleet cars') >= 0 ? t : '';})()" % _row("CP001/1"))
        assert text, await browser.evaluate(_row("CP001/1"))
        why = await browser.wait_for(
            "(document.querySelector('#connectors tr[data-key=\"CP001/1\"] td.why') || {}).textContent")
        assert why and why != "no car", why
        assert "★" in text                               # prioritised group
        assert await browser.evaluate("performance.getEntriesByType('navigation').length") == 1
        events = await browser.wait_for("(function(){var t=document.getElementById('events').innerText;"
                                        " return t.indexOf('session started') >= 0 ? t : '';})()")
        assert "CP001" in events
        await browser.screenshot(out / "page-desktop-car.png")

        # A phone: the table becomes one card per connector, nothing wider than the screen.
        await browser.send("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2,
                           mobile=True)
        assert await browser.wait_for("getComputedStyle(document.querySelector('#connectors tbody tr')).display"
                                      " === 'block'")
        assert await browser.evaluate("document.documentElement.scrollWidth") <= 390
        await browser.screenshot(out / "page-phone.png")
    finally:
        await browser.close()
    for name in ("page-desktop-before.png", "page-desktop-car.png", "page-phone.png"):
        assert (out / name).stat().st_size > 5000, name
