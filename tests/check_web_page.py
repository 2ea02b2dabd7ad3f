#!/usr/bin/env python3
"""Drives the translation page in headless Chromium, as a person would.

Two modes:

  check_web_page.py daemon SEQMT_BINARY MODEL
      Starts `SEQMT_BINARY serve --model MODEL --host 127.0.0.1 --port 0`,
      opens the page the daemon serves at /, waits for the language lists
      that the page fills from GET /languages, types text into the text box,
      clicks Translate with the mouse and reads the result element. The
      result must equal what POST /translate returns for the same text. A
      text of more lines than --max-texts must come back whole, because the
      page sends it as one string. An over-long text must show the daemon's
      own 400 message.

  check_web_page.py static WEB_FOLDER
      Serves the page's source files with Python's http.server on 127.0.0.1,
      where GET languages does not exist, and checks that the page loads its
      script and style and shows the error.

Both modes fail when the page throws a JavaScript exception or requests
anything outside its own origin. Chromium is driven through the DevTools
protocol over --remote-debugging-pipe (JSON messages ending in a NUL byte
on file descriptors 3 and 4), so the test needs nothing beyond Debian's
chromium package and Python's standard library.

Set SEQMT_WEB_SCREENSHOT=FILE.png to save a screenshot: of the page with
two translated lines in daemon mode, of the error in static mode.
Prints one "ok:" line per check, and "N passed, N failed" at the end; the
exit status is 1 when any check failed.
"""
import fcntl
import functools
import http.server
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

BROWSER_TIMEOUT = 30  # seconds for one DevTools command
PAGE_TIMEOUT = 60  # seconds for the page to reach a state (a translation included)
DAEMON_START_TIMEOUT = 60  # seconds for the model to load
TOTAL_TIMEOUT = 240  # the whole test, after which it fails
MAX_CHARS = 300  # the daemon's --max-chars, so that a long text gets 400
MAX_TEXTS = 2  # the daemon's --max-texts, fewer than the lines of LINES

SENTENCE = "Two young children are playing soccer in a park."
LINES = "Two dogs are playing in the snow.\n\nA man is riding a bike.\nA boy jumps."


class CheckFailed(Exception):
    pass


class Results:
    """Counts checks; a failed check is reported and the test goes on."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, condition, message, detail=""):
        if condition:
            self.passed += 1
            print("ok: " + message)
        else:
            self.failed += 1
            print("FAIL: " + message + (" (" + detail + ")" if detail else ""))
        return condition


def find_chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise CheckFailed("chromium is not installed; run ./setup.sh (Debian package chromium)")


class Browser:
    """Headless Chromium with one page, driven over the DevTools pipe."""

    def __init__(self, profile_dir):
        # Chromium reads commands on fd 3 and writes replies and events on
        # fd 4. The child's pipe ends are first moved to fds of 10 and above,
        # then bash moves them to 3 and 4 before it executes Chromium.
        # (subprocess closes every fd not in pass_fds after preexec_fn
        # runs, so a dup2 there would not survive.)
        command_read, self.command_write = os.pipe()
        self.reply_read, reply_write = os.pipe()
        child_in = fcntl.fcntl(command_read, fcntl.F_DUPFD, 10)
        child_out = fcntl.fcntl(reply_write, fcntl.F_DUPFD, 10)
        os.close(command_read)
        os.close(reply_write)
        place_pipes = 'exec 3<&%d 4>&%d %d<&- %d>&- && exec "$@"' % (
            child_in, child_out, child_in, child_out)

        args = [
            "bash", "-c", place_pipes, "bash",
            find_chromium(),
            "--headless",
            "--no-sandbox",  # tests run as root in containers
            "--disable-gpu",
            "--disable-dev-shm-usage",  # containers often have a small /dev/shm
            "--remote-debugging-pipe",
            "--user-data-dir=" + profile_dir,
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-features=Translate,MediaRouter,OptimizationHints",
            "--window-size=1000,800",
            "about:blank",
        ]
        self.process = subprocess.Popen(
            args,
            pass_fds=(child_in, child_out),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its helper processes share its group
        )
        os.close(child_in)
        os.close(child_out)
        self.next_id = 0
        self.replies = {}
        self.events = []
        self.incoming = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.session = None

    def _read(self):
        buffer = b""
        while True:
            try:
                chunk = os.read(self.reply_read, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                self.incoming.put(None)
                return
            buffer += chunk
            while b"\0" in buffer:
                message, buffer = buffer.split(b"\0", 1)
                self.incoming.put(json.loads(message))

    def _pump(self, timeout):
        message = self.incoming.get(timeout=timeout)
        if message is None:
            raise CheckFailed("chromium closed the DevTools pipe (it exited)")
        if "id" in message:
            self.replies[message["id"]] = message
        else:
            self.events.append(message)

    def send(self, method, params=None, session=True):
        """Sends one command and returns its result, or raises on error."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.command_write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + BROWSER_TIMEOUT
        while self.next_id not in self.replies:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckFailed(method + " got no reply within %d s" % BROWSER_TIMEOUT)
            try:
                self._pump(left)
            except queue.Empty:
                pass
        reply = self.replies.pop(self.next_id)
        if "error" in reply:
            raise CheckFailed(method + " failed: " + json.dumps(reply["error"]))
        return reply.get("result", {})

    def open_page(self):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True},
            session=False)
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.send(domain + ".enable")

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise CheckFailed("evaluating %r raised an exception: %s"
                              % (expression, result["exceptionDetails"]))
        return result["result"].get("value")

    def wait_for(self, expression, description):
        """Polls expression until it is truthy; returns its value."""
        deadline = time.monotonic() + PAGE_TIMEOUT
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise CheckFailed("timed out after %d s waiting for %s" % (PAGE_TIMEOUT, description))

    def navigate(self, url):
        self.send("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete'", "the page to load")

    def click(self, selector):
        """Clicks the middle of the element with the mouse, as a user does."""
        box = self.evaluate(
            "(() => { const r = document.querySelector(%s).getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()" % json.dumps(selector))
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {
                "type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1})

    def type_text(self, selector, text):
        """Focuses the element by a click, clears it and types text."""
        self.click(selector)
        self.evaluate("document.querySelector(%s).select()" % json.dumps(selector))
        self.send("Input.dispatchKeyEvent", {
            "type": "keyDown", "key": "Delete", "code": "Delete", "windowsVirtualKeyCode": 46})
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Delete", "code": "Delete"})
        self.send("Input.insertText", {"text": text})

    def drain_events(self):
        while True:
            try:
                self._pump(0)
            except queue.Empty:
                return

    def requested_urls(self):
        self.drain_events()
        return [e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"]

    def posted_bodies(self, url):
        """Returns the bodies of the POST requests the page sent to url."""
        self.drain_events()
        return [e["params"]["request"].get("postData", "") for e in self.events
                if e.get("method") == "Network.requestWillBeSent"
                and e["params"]["request"]["url"] == url
                and e["params"]["request"]["method"] == "POST"]

    def exceptions(self):
        self.drain_events()
        return [e["params"]["exceptionDetails"] for e in self.events
                if e.get("method") == "Runtime.exceptionThrown"]

    def screenshot(self, path):
        import base64
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            if self.process.poll() is None:
                self.send("Browser.close", session=False)
                self.process.wait(timeout=10)
        except (CheckFailed, OSError, subprocess.TimeoutExpired):
            pass
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self.command_write)
        os.close(self.reply_read)


def save_screenshot(browser):
    """Saves the page to $SEQMT_WEB_SCREENSHOT when it is set."""
    path = os.environ.get("SEQMT_WEB_SCREENSHOT")
    if path:
        browser.screenshot(path)


# ---- HTTP helpers ----

def http_request(url, body=None):
    """Returns (status, headers, text) of a GET, or of a JSON POST with body."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if data:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=PAGE_TIMEOUT) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def api_translation(origin, texts, source, target):
    """Returns POST /translate's translatedText of texts, a string or a list."""
    status, _, text = http_request(origin + "/translate",
                                   {"q": texts, "source": source, "target": target})
    if status != 200:
        raise CheckFailed("POST /translate returned %d: %s" % (status, text))
    return json.loads(text)["translatedText"]


def check_common(results, browser, origin):
    """Checks that apply in both modes: no exceptions, no other origins."""
    urls = browser.requested_urls()
    foreign = [u for u in urls if not (u.startswith(origin + "/") or u.startswith("data:"))]
    results.check(not foreign, "the page requested nothing outside " + origin,
                  "requested: " + ", ".join(foreign))
    for name in ("/app.js", "/style.css"):
        results.check(origin + name in urls, "the page loaded " + name)
    exceptions = browser.exceptions()
    results.check(not exceptions, "no JavaScript exception",
                  json.dumps(exceptions)[:500])


# ---- daemon mode ----

class Daemon:
    """`seqmt serve` on 127.0.0.1 and a free port, stopped by its PID."""

    def __init__(self, binary, model):
        self.process = subprocess.Popen(
            [binary, "serve", "--model", model, "--host", "127.0.0.1", "--port", "0",
             "--max-chars", str(MAX_CHARS), "--max-texts", str(MAX_TEXTS),
             "--translate-threads", "1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        self.log = []
        port_found = queue.Queue()

        def read_log():
            for line in self.process.stderr:
                self.log.append(line.rstrip("\n"))
                match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
                if match:
                    port_found.put(int(match.group(1)))
            port_found.put(None)

        threading.Thread(target=read_log, daemon=True).start()
        try:
            port = port_found.get(timeout=DAEMON_START_TIMEOUT)
        except queue.Empty:
            port = None
        if port is None:
            self.stop()
            raise CheckFailed("seqmt serve printed no 'listening on' line; its log:\n"
                              + "\n".join(self.log[-20:]))
        self.origin = "http://127.0.0.1:%d" % port

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_daemon_mode(results, browser, binary, model):
    daemon = Daemon(binary, model)
    try:
        origin = daemon.origin
        status, headers, _ = http_request(origin + "/")
        if status != 200 or not headers.get("Content-Type", "").startswith("text/html"):
            raise CheckFailed(
                "GET / returned %d %s, not the page: the daemon must serve assets_find(path) "
                "(service/assets.h) for GET / and the page's files" %
                (status, headers.get("Content-Type", "")))

        # The language lists come from GET /languages.
        _, _, text = http_request(origin + "/languages")
        languages = json.loads(text)
        browser.navigate(origin + "/")
        browser.wait_for("document.getElementById('translate-form').dataset.state === 'ready'",
                         "the language lists")
        sources = browser.evaluate("[...document.getElementById('source').options]"
                                   ".map(o => o.value)")
        targets = browser.evaluate("[...document.getElementById('target').options]"
                                   ".map(o => o.value)")
        results.check(sources == [entry["code"] for entry in languages],
                      "source list matches GET /languages", repr(sources))
        results.check(targets == languages[0]["targets"],
                      "target list matches the first language's targets", repr(targets))
        source, target = languages[0]["code"], languages[0]["targets"][0]

        # One sentence, typed and sent with a mouse click.
        expected = api_translation(origin, [SENTENCE], source, target)[0]
        browser.type_text("#text", SENTENCE)
        browser.click("#translate")
        state = browser.wait_for(
            "['done', 'failed'].includes(document.getElementById('translate-form')"
            ".dataset.state) && document.getElementById('translate-form').dataset.state",
            "the translation")
        page_text = browser.evaluate("document.getElementById('result').textContent")
        error = browser.evaluate("document.getElementById('error').textContent")
        results.check(state == "done", "translation finished without error", error)
        results.check(page_text == expected, "result equals POST /translate's translation",
                      "page %r, API %r" % (page_text, expected))
        results.check(page_text.strip() != "" and page_text != SENTENCE,
                      "result is a translation", repr(page_text))

        # More lines than --max-texts: one string, each line translated
        # and the blank line kept.
        parts = [line for line in LINES.split("\n") if line]
        expected = api_translation(origin, LINES, source, target)
        expected_lines = [api_translation(origin, [part], source, target)[0] for part in parts]
        results.check(len(parts) > MAX_TEXTS, "LINES has more lines than --max-texts")
        results.check(expected.split("\n") == [expected_lines[0], ""] + expected_lines[1:],
                      "the API translates each line of one string", repr(expected))
        browser.type_text("#text", LINES)
        browser.click("#translate")
        state = browser.wait_for(
            "(() => { const state = document.getElementById('translate-form').dataset.state;"
            " const result = document.getElementById('result').textContent;"
            " return ((state === 'done' && result.includes('\\n')) || state === 'failed')"
            " && state; })()",
            "the translation of several lines")
        page_text = browser.evaluate("document.getElementById('result').textContent")
        error = browser.evaluate("document.getElementById('error').textContent")
        results.check(state == "done", "several lines translated without error", error)
        results.check(page_text == expected,
                      "lines translated with the blank line kept, as the API does",
                      "page %r, API %r" % (page_text, expected))
        sent = [json.loads(body) for body in browser.posted_bodies(origin + "/translate")]
        results.check(sent and all(isinstance(body.get("q"), str) for body in sent),
                      "the page sends q as one string", repr(sent))
        save_screenshot(browser)

        # A text over --max-chars: the daemon's 400 message on the page.
        long_text = " ".join([SENTENCE] * (MAX_CHARS // len(SENTENCE) + 1))
        status, _, text = http_request(origin + "/translate",
                                       {"q": long_text, "source": source, "target": target})
        api_error = json.loads(text).get("error", "") if status == 400 else ""
        results.check(status == 400 and api_error != "", "the API rejects the long text with 400",
                      "%d %s" % (status, text))
        browser.type_text("#text", long_text)
        browser.click("#translate")
        browser.wait_for("document.getElementById('translate-form').dataset.state === 'failed'",
                         "the error of the long text")
        error = browser.evaluate("document.getElementById('error').textContent")
        hidden = browser.evaluate("document.getElementById('error').hidden")
        page_text = browser.evaluate("document.getElementById('result').textContent")
        results.check(not hidden and "HTTP 400" in error and api_error in error,
                      "the page shows the daemon's 400 message", repr(error))
        results.check(page_text == "", "the result is cleared after an error", repr(page_text))

        check_common(results, browser, origin)
        for path in ("/languages", "/translate"):
            results.check(origin + path in browser.requested_urls(),
                          "the page called " + path)
    finally:
        daemon.stop()


# ---- static mode ----

class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def run_static_mode(results, browser, folder):
    handler = functools.partial(QuietHandler, directory=folder)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = "http://127.0.0.1:%d" % server.server_address[1]
    try:
        browser.navigate(origin + "/index.html")
        browser.wait_for("document.getElementById('translate-form').dataset.state === 'failed'",
                         "the error about the missing language list")
        error = browser.evaluate("document.getElementById('error').textContent")
        hidden = browser.evaluate("document.getElementById('error').hidden")
        disabled = browser.evaluate("document.getElementById('translate').disabled")
        results.check(not hidden and "Cannot list the languages: HTTP 404" in error,
                      "the page shows that GET languages failed", repr(error))
        results.check(disabled, "Translate stays disabled without languages")
        check_common(results, browser, origin)
        results.check(origin + "/languages" in browser.requested_urls(),
                      "the page asked for the languages at a relative URL")
    finally:
        server.shutdown()
        server.server_close()


def on_alarm(signum, frame):
    raise CheckFailed("the test took more than %d s" % TOTAL_TIMEOUT)


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("daemon", "static"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TOTAL_TIMEOUT)
    results = Results()
    profile = tempfile.mkdtemp(prefix="seqmt-chromium-")
    browser = None
    try:
        browser = Browser(profile)
        browser.open_page()
        if sys.argv[1] == "daemon":
            if len(sys.argv) != 4:
                print("usage: check_web_page.py daemon SEQMT_BINARY MODEL", file=sys.stderr)
                return 2
            run_daemon_mode(results, browser, sys.argv[2], sys.argv[3])
        else:
            run_static_mode(results, browser, sys.argv[2])
        if sys.argv[1] == "static":
            save_screenshot(browser)
    except CheckFailed as e:
        results.check(False, str(e))
    finally:
        signal.alarm(0)
        if browser:
            browser.close()
        shutil.rmtree(profile, ignore_errors=True)
    print("%d passed, %d failed" % (results.passed, results.failed))
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
