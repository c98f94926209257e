"""Capture the README's screenshots (dashboard, results, strategy) from a served liftlab.

Build and serve the demo first (``liftlab demo``, or ``liftlab demo --no-serve`` then ``liftlab
serve``), then::

    LIFTLAB_SCREENSHOT_PASSWORD=... python docs/screenshots/capture.py \
        --base-url http://127.0.0.1:5000 --email admin@liftlab.local

Headless Debian chromium through Playwright, as in the browser tests. Each page is cut to
``--max-height`` pixels and, when Pillow is installed, reduced to a 256-colour palette, so that the
PNGs stay small in the repository.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
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


def shrink(path: Path) -> None:
    try:
        from PIL import Image
    except ModuleNotFoundError:
        return
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256)
    small.save(path, optimize=True)


def capture(args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    pages = {
        "dashboard.png": "/",
        "results.png": f"/experiments/{args.experiment}/results",
        "strategy.png": f"/strategy/{args.strategy}",
    }
    only = set(args.only or pages)
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{args.base_url}/auth/login")
        page.get_by_label("E-mail").fill(args.email)
        page.get_by_label("Password").fill(os.environ["LIFTLAB_SCREENSHOT_PASSWORD"])
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/")
        for name, path in pages.items():
            if name not in only:
                continue
            page.goto(f"{args.base_url}{path}")
            height = min(page.evaluate("document.body.scrollHeight"), args.max_height)
            target = args.out / name
            page.screenshot(
                path=str(target),
                full_page=True,
                clip={"x": 0, "y": 0, "width": 1280, "height": height},
            )
            shrink(target)
            print(f"{target}: {target.stat().st_size // 1024} KiB")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:5000")
    parser.add_argument("--email", default="admin@liftlab.local")
    parser.add_argument("--experiment", default="checkout-incentives")
    parser.add_argument("--strategy", default="from-checkout-incentives")
    parser.add_argument("--max-height", type=int, default=1800)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--only", nargs="*", help="file names to capture (default: all)")
    capture(parser.parse_args())


if __name__ == "__main__":
    main()
