"""A scripted OpenAI-compatible chat server on 127.0.0.1 for HTTP-client tests (no model).

Replies are deterministic (``reply_text``: seed, choice index and a digest of the last user message),
so a retried or resumed request gives the same bytes, and never quote the prompt (datagen's leak
filter would reject a reply that contains the answer). ``script`` holds faults to serve before
the normal reply, consumed per request in arrival order (one list for every request), or per
prompt substring via ``faults_for``:
  ("status", code[, retry_after])  an error status, optionally with a Retry-After header
  "malformed"                      200 with a body that is not the expected JSON
  "no_choices"                     200 JSON without choices
  "drop"                           close the connection without answering
  "content_int"                    200, a well-formed completion whose content is the number 73
  "error_finish"                   200, a completion of error text with finish_reason "error"
  "error_body"                     200 with an OpenAI error object instead of choices
``reply`` (prompt, seed, index) -> text replaces ``reply_text`` (a judge's verdicts, say).
``delay_s`` slows every answer (to preempt a client mid-run). ``log`` records (time, prompt, outcome).
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler

from faults.endpoint import ERROR_COMPLETIONS
from faults.loopback import LoopbackHTTPServer


def reply_text(prompt: str, seed, index: int) -> str:
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:12]
    return f"Step one, consider {digest}. Step two, weigh seed {seed} option {index}. Step three, conclude."


class LoopbackOpenAI(LoopbackHTTPServer):
    path_prefix = "/v1"

    def __init__(self, delay_s: float = 0.0, reply=reply_text):
        self.reply = reply
        self.script: list = []
        self.faults_for: dict[str, list] = {}   # prompt substring -> faults for that prompt, in order
        self.always_fail: set[str] = set()      # prompt substrings answered 500 forever
        self.delay_s = delay_s
        self.log: list[tuple[float, str, str]] = []
        self.in_flight = 0                      # requests being answered right now
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Until no request is being answered (a killed client's last one may still be sleeping)."""
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not self.in_flight, f"{self.in_flight} request(s) still in flight after {timeout}s"

    def served(self, outcome: str = "ok") -> int:
        return sum(1 for _, _, o in self.log if o == outcome)

    def _next_fault(self, prompt: str):
        with self._lock:
            if any(s in prompt for s in self.always_fail):
                return ("status", 500)
            for sub, faults in self.faults_for.items():
                if sub in prompt and faults:
                    return faults.pop(0)
            return self.script.pop(0) if self.script else None

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, body: bytes, headers: dict | None = None):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                with server._lock:
                    server.in_flight += 1
                try:
                    self._answer()
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                prompt = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
                fault = server._next_fault(prompt)
                if server.delay_s:
                    time.sleep(server.delay_s)
                outcome = fault[0] + str(fault[1]) if isinstance(fault, tuple) else (fault or "ok")
                server.log.append((time.monotonic(), prompt, outcome))
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault == "malformed":
                    return self._send(200, b'{"choices": [{"message": ')
                if fault == "no_choices":
                    return self._send(200, b'{"object": "chat.completion"}')
                if fault in ERROR_COMPLETIONS:
                    return self._send(200, json.dumps(ERROR_COMPLETIONS[fault]).encode())
                if isinstance(fault, tuple):
                    headers = {"Retry-After": str(fault[2])} if len(fault) > 2 else {}
                    return self._send(fault[1], b'{"error": "scripted"}', headers)
                n = int(body.get("n", 1))
                choices = [{"index": i, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": server.reply(prompt, body.get("seed"), i)}}
                           for i in range(n)]
                self._send(200, json.dumps({"object": "chat.completion", "choices": choices}).encode())

        return Handler
