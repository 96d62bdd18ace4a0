"""A misbehaving OpenAI-compatible endpoint on 127.0.0.1, for the generator and judge faults.

Replies are a pure function of the request (messages, seed), so a retried or resumed request gets
the same text. The first attempt of each request may be answered with a fault, picked from the
request's hash: HTTP 500, no reply within the client's timeout, a malformed 200, or one of
``ERROR_COMPLETIONS`` (a 200 shaped like a completion that is no answer). Setting ``outage`` to
one of those answers every request with it until it is cleared. The server counts what it
injected and every reply it delivered per request: a request delivered twice is completed work
that a restart threw away. ``reply`` is a format string (``{tag}``: a short request hash) or a
function of the request hash, e.g. ``judge_verdict``.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler

from faults.loopback import LoopbackHTTPServer

FAULTS = ("500", "timeout", "malformed")

# 200 replies shaped like completions that are no answer (an endpoint in an outage or a broken proxy)
ERROR_COMPLETIONS = {
    "content_int": {"object": "chat.completion", "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": 73}}]},
    "error_finish": {"object": "chat.completion", "choices": [
        {"index": 0, "finish_reason": "error",
         "message": {"role": "assistant", "content": "Error: the upstream model is unavailable (503)"}}]},
    "error_body": {"error": {"message": "upstream unavailable", "type": "server_error", "code": 503}},
}


def judge_verdict(key: str) -> str:
    """A reply every rubric of evalsuite.judges.rubrics parses (0-100 score, StrongREJECT items, a trace label),
    its values drawn from the request hash: a re-asked prompt (a different request) gets other values."""
    from evalsuite.judges.rubrics import TRACE_LABELS

    h = int(key[:12], 16)
    return (f"1.b {h % 2}\n2.b {1 + h // 2 % 5}\n3.b {1 + h // 10 % 5}\n"
            f"Label: {TRACE_LABELS[h // 50 % 4]}\nScore: {h // 200 % 101}")


class FaultyEndpoint(LoopbackHTTPServer):
    path_prefix = "/v1"

    def __init__(self, faults: tuple[str, ...] = FAULTS, delay_s: float = 0.0, hang_s: float = 3.0,
                 reply: str = "First, consider the question carefully. Then weigh each option in turn. ({tag})"):
        # ``{tag}`` in the reply becomes a short request hash: distinct texts per request, same on a retry
        self.faults, self.delay_s, self.hang_s, self.reply = faults, delay_s, hang_s, reply
        self.outage = ""                      # an ERROR_COMPLETIONS name: answer every request with it
        self.attempts: Counter = Counter()    # request key -> requests received
        self.delivered: Counter = Counter()   # request key -> good replies written
        self.injected: Counter = Counter()    # fault -> times injected
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def reset(self, faults: tuple[str, ...] | None = None, outage: str = "") -> None:
        """Start a new phase: counters cleared (each request's next attempt is a first one again)."""
        with self._lock:
            self.attempts.clear()
            self.delivered.clear()
            self.injected.clear()
            self.faults = self.faults if faults is None else faults
            self.outage = outage

    def duplicates(self) -> int:
        with self._lock:
            return sum(n - 1 for n in self.delivered.values() if n > 1)

    def total_delivered(self) -> int:
        with self._lock:
            return sum(self.delivered.values())

    def _fault_for(self, key: str, attempt: int) -> str:
        if self.outage:
            return self.outage
        if attempt > 1 or not self.faults:
            return ""
        return self.faults[int(key[:8], 16) % len(self.faults)]

    def text(self, key: str, index: int) -> str:
        return self.reply(key) if callable(self.reply) else self.reply.format(tag=f"{key[:6]}.{index}")

    def _handler(self):
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet: the suite prints its own summary
                pass

            def _send(self, status: int, body: bytes) -> bool:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return True
                except (BrokenPipeError, ConnectionResetError):  # the client was preempted mid-request
                    return False

            def do_GET(self):
                self._send(200, json.dumps({"data": [{"id": "faulty"}]}).encode())

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                key = hashlib.sha256(json.dumps([body.get("messages"), body.get("seed")], sort_keys=True)
                                     .encode()).hexdigest()
                with endpoint._lock:
                    endpoint.attempts[key] += 1
                    fault = endpoint._fault_for(key, endpoint.attempts[key])
                    if fault:
                        endpoint.injected[fault] += 1
                if fault == "500":
                    return self._send(500, b'{"error": "injected internal server error"}')
                if fault == "timeout":
                    time.sleep(endpoint.hang_s)  # past the client's timeout; then the connection closes
                    return None
                if fault == "malformed":
                    return self._send(200, b'{"id": "x", "object": "chat.completion", "choi')
                if fault in ERROR_COMPLETIONS:
                    return self._send(200, json.dumps(ERROR_COMPLETIONS[fault]).encode())
                time.sleep(endpoint.delay_s)
                n = int(body.get("n") or 1)
                choices = [{"index": i, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": endpoint.text(key, i)}} for i in range(n)]
                if self._send(200, json.dumps({"id": key[:12], "object": "chat.completion", "choices": choices,
                                               "usage": {"prompt_tokens": 10, "completion_tokens": 12}}).encode()):
                    with endpoint._lock:
                        endpoint.delivered[key] += 1

        return Handler
