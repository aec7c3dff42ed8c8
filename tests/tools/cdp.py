"""A small Chrome DevTools protocol driver, standard library only (tests only).

Chromium is started headless with --remote-debugging-pipe: commands go to its fd 3 and
answers and events come back on its fd 4, each message JSON ended by a NUL byte (no
WebSocket client needed). One page target is attached in flat mode; `call` sends a command
to it (or to the browser with browser=True) and returns the result; events are kept in order.

    with Chrome("/usr/bin/chromium", workdir) as c:
        c.goto("http://127.0.0.1:8080/")
        c.wait("document.body.dataset.state === 'ready'", 60)
        c.eval("1 + 1")                      # -> 2
        c.errors()                           # console errors and uncaught exceptions so far
"""
import base64
import json
import os
import queue
import subprocess
import threading
import time


class CDPError(Exception):
    pass


class Chrome:
    def __init__(self, binary, workdir, width=1400, height=1000):
        self.workdir = workdir
        prof = os.path.join(workdir, "chrome-profile")
        os.makedirs(prof, exist_ok=True)
        cmd_r, self._cmd_w = os.pipe()  # we write commands, chromium reads fd 3
        self._evt_r, evt_w = os.pipe()  # chromium writes fd 4, we read
        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-dev-shm-usage", "--remote-debugging-pipe",
                "--user-data-dir=" + prof, "--window-size=%d,%d" % (width, height), "about:blank"]
        # the shell puts the pipe ends at the fd numbers chromium expects
        sh = 'exec "$@" 3<&%d 4>&%d' % (cmd_r, evt_w)
        self.log = open(os.path.join(workdir, "chrome.log"), "wb")
        self.proc = subprocess.Popen(["sh", "-c", sh, "sh"] + args, pass_fds=(cmd_r, evt_w),
                                     stdout=self.log, stderr=self.log)
        os.close(cmd_r)
        os.close(evt_w)
        self._next = 0
        self._answers = {}
        self._cv = threading.Condition()
        self.events = queue.Queue()
        self.console = []  # (kind, text) of every console message and exception
        threading.Thread(target=self._reader, daemon=True).start()
        targets = self.call("Target.getTargets", browser=True)["targetInfos"]
        page = [t for t in targets if t["type"] == "page"][0]
        self.session = self.call("Target.attachToTarget", {"targetId": page["targetId"],
                                                          "flatten": True}, browser=True)["sessionId"]
        for d in ("Page", "Runtime", "Log"):
            self.call(d + ".enable")
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                        "deviceScaleFactor": 1, "mobile": False})

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def close(self):
        try:
            self.call("Browser.close", browser=True, timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def _reader(self):
        buf = b""
        while True:
            chunk = os.read(self._evt_r, 1 << 16)
            if not chunk:
                with self._cv:
                    self._answers["closed"] = True
                    self._cv.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                m = json.loads(raw)
                if "id" in m:
                    with self._cv:
                        self._answers[m["id"]] = m
                        self._cv.notify_all()
                else:
                    self._event(m)

    def _event(self, m):
        meth, p = m.get("method"), m.get("params", {})
        if meth == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            self.console.append(("console." + p["type"], text))
        elif meth == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.console.append(("exception", d.get("exception", {}).get("description", d.get("text"))))
        elif meth == "Log.entryAdded" and p["entry"].get("level") == "error":
            e = p["entry"]
            self.console.append(("log." + e.get("source", ""), e.get("text", "") + " " + e.get("url", "")))
        self.events.put(m)

    def call(self, method, params=None, browser=False, timeout=120):
        self._next += 1
        i = self._next
        m = {"id": i, "method": method, "params": params or {}}
        if not browser:
            m["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(m).encode() + b"\0")
        end = time.time() + timeout
        with self._cv:
            while i not in self._answers:
                if self._answers.get("closed"):
                    raise CDPError("chromium closed the pipe (see chrome.log)")
                left = end - time.time()
                if left <= 0:
                    raise CDPError("no answer to %s in %d s" % (method, timeout))
                self._cv.wait(left)
            a = self._answers.pop(i)
        if "error" in a:
            raise CDPError("%s: %s" % (method, a["error"]))
        return a.get("result", {})

    def eval(self, expr, timeout=120):
        """The value of a JavaScript expression in the page (promises awaited)."""
        r = self.call("Runtime.evaluate", {"expression": expr, "awaitPromise": True,
                                           "returnByValue": True}, timeout=timeout)
        if "exceptionDetails" in r:
            raise CDPError("page error in %r: %s" % (expr[:80], r["exceptionDetails"].get(
                "exception", {}).get("description", r["exceptionDetails"].get("text"))))
        return r["result"].get("value")

    def wait(self, expr, seconds, what=None):
        """Poll until expr is truthy; its value, or CDPError after `seconds`."""
        end = time.time() + seconds
        guarded = "(() => { try { return (%s); } catch (e) { return false; } })()" % expr
        while True:
            v = self.eval(guarded)
            if v:
                return v
            if time.time() > end:
                seen = self.eval("(() => { try { return document.body.dataset.state + ': ' + "
                                 "document.getElementById('message').textContent; } catch (e) "
                                 "{ return String(e); } })()")
                raise CDPError("waited %d s for %s (page: %s; console: %s)" % (
                    seconds, what or expr, seen, self.console))
            time.sleep(0.25)

    def goto(self, url):
        """Open url and wait until its document has loaded."""
        self.call("Page.navigate", {"url": url})
        # the page may rewrite its own #fragment at once: compare without it
        self.wait("document.readyState === 'complete' && location.href.split('#')[0] === %s"
                  % json.dumps(url.split("#")[0]), 60,
                  "loading " + url)

    def set_files(self, selector, paths):
        root = self.call("DOM.getDocument")["root"]["nodeId"]
        node = self.call("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        if not node:
            raise CDPError("no element " + selector)
        self.call("DOM.setFileInputFiles", {"nodeId": node, "files": paths})

    def type_text(self, selector, text):
        self.eval("document.querySelector(%s).focus()" % json.dumps(selector))
        self.call("Input.insertText", {"text": text})

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def allow_downloads(self, folder):
        self.call("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": folder,
                                                  "eventsEnabled": True}, browser=True)

    def errors(self, handled="/v1/"):
        """Console errors and uncaught exceptions. A failed request to a URL containing
        `handled` (the API's 4xx answers the page shows, e.g. a refused upload) is a network
        log entry of the browser, not a page error, and is left out; any other failed
        request (a missing script or style) counts."""
        return [e for e in self.console if not (e[0] == "log.network" and handled in e[1])]
