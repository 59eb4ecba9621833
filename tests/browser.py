"""A real headless browser for the HTML report's tests: Debian's chromium over the
DevTools protocol (websocket-client), no Selenium, no driver download.

``Browser`` starts ``chromium --headless --no-sandbox --disable-background-networking
--disable-gpu --user-data-dir=<tmp> --remote-debugging-port=0``, reads the port
chromium picked from ``<user-data-dir>/DevToolsActivePort``, opens a page target
and speaks JSON-RPC to it. Every wait is bounded, and the browser is always
killed (its whole process group) on exit.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

INSTALL_HINT = "Debian's chromium is not installed: run ./scripts/ensure-chromium (as root; `make test` does) or `apt-get install -y chromium`"


def find_chromium() -> str | None:
    """Debian's chromium: ``chromium`` on PATH, else ``/usr/bin/chromium``."""
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


class BrowserError(RuntimeError):
    pass


class Browser:
    """``with Browser() as b: b.open(path); b.evaluate("document.title")``."""

    def __init__(self, executable: str, timeout: float = 10.0) -> None:
        self.executable = executable
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.profile = tempfile.mkdtemp(prefix="wager-chromium-")
        self.ws: Any = None
        self._id = 0
        self.events: list[dict[str, Any]] = []

    # --- lifecycle -------------------------------------------------------------

    def __enter__(self) -> "Browser":
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _start(self) -> None:
        import websocket

        args = [
            self.executable,
            "--headless",
            "--no-sandbox",
            "--disable-background-networking",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--metrics-recording-only",
            "--mute-audio",
            f"--user-data-dir={self.profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace")[-2000:] if self.process.stderr else ""
                raise BrowserError(f"chromium exited with code {self.process.returncode}: {err}")
            if time.monotonic() > deadline:
                raise BrowserError(f"chromium wrote no {port_file.name} within {self.timeout} s")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        page = self._page_target(port, deadline)
        self.ws = websocket.create_connection(page, timeout=self.timeout, suppress_origin=True)

    def _page_target(self, port: int, deadline: float) -> str:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as response:
                    targets = json.loads(response.read())
                pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BrowserError("chromium offered no page target over DevTools")
            time.sleep(0.05)

    def close(self) -> None:
        if self.ws is not None:
            try:
                self.ws.close()
            except Exception:  # the browser may already be gone; closing is best effort
                pass
            self.ws = None
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    # --- the protocol ----------------------------------------------------------

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call ``method`` and wait (bounded) for its reply; events seen meanwhile are kept."""
        self._id += 1
        ident = self._id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = self._receive(deadline)
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
        raise BrowserError(f"{method}: no reply within {self.timeout} s")

    def wait_for(self, event: str) -> dict[str, Any]:
        """Wait (bounded) for the next ``event`` not seen yet."""
        for i, seen in enumerate(self.events):
            if seen.get("method") == event:
                return self.events.pop(i)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = self._receive(deadline)
            if message.get("method") == event:
                self.events.remove(message)
                return message
        raise BrowserError(f"no {event} within {self.timeout} s")

    def _receive(self, deadline: float) -> dict[str, Any]:
        self.ws.settimeout(max(0.05, deadline - time.monotonic()))
        message = json.loads(self.ws.recv())
        if "method" in message:
            self.events.append(message)
        return message

    # --- what the tests use ----------------------------------------------------

    def open(self, path: Path, width: int = 1200, height: int = 900, mobile: bool = False) -> None:
        """Enable the domains whose errors we collect, size the viewport, load ``path``."""
        self.send("Runtime.enable")
        self.send("Log.enable")
        self.send("Page.enable")
        self.resize(width, height, mobile)
        self.send("Page.navigate", url=Path(path).resolve().as_uri())
        self.wait_for("Page.loadEventFired")

    def resize(self, width: int, height: int = 900, mobile: bool = False) -> None:
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1 if not mobile else 2, mobile=mobile)

    def evaluate(self, expression: str) -> Any:
        reply = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in reply:
            raise BrowserError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors and assertions, uncaught exceptions and log entries at level error."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append("exception: " + str(details.get("exception", {}).get("description") or details.get("text")))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                found.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
        return found

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """A PNG of the page (the whole page when ``full_page``)."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            width, height = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": min(height, 16000), "scale": 1}
        data = self.send("Page.captureScreenshot", **params)["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path
