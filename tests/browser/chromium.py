"""Where the browser tests find Chromium: Debian's package (Playwright never downloads a browser here)."""

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
