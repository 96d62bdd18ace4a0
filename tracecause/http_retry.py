"""Polite, bounded HTTP retries for every OpenAI-compatible client (datagen generator, eval judge)
and the benchmark fetcher: one policy, one place.

- Retryable: transport errors (refused, reset, timeout), 408/409/425/429 and every 5xx, and a 200
  whose body is malformed (``MalformedReply`` from the caller's parser) — a proxy or an overloaded
  server can answer 200 with a truncated or empty body, or an error dressed as a completion
  (``completion_choices`` below says which).
- The wait doubles from ``backoff`` up to ``backoff_max`` with jitter (half fixed, half random, so
  a crowd of clients that failed together does not come back together), and is at least the
  server's ``Retry-After`` (seconds or an HTTP date), capped at ``retry_after_max``.
- ``RateLimiter`` caps request *starts* per second, on top of the caller's concurrency cap: a
  hosted API's quota is a rate, not a number of open connections.
Any other status fails at once with the body: retrying a 400/401/404 only hides the bug.
"""
from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Awaitable, Callable

import httpx

RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


class MalformedReply(ValueError):
    """A 200 reply the caller could not use (bad JSON, missing fields): retried like a 5xx."""


class RequestFailed(RuntimeError):
    """A request failed for good: a non-retryable status, or every retry used up."""

    def __init__(self, message: str, status: int | None = None, attempts: int = 1):
        super().__init__(message)
        self.status, self.attempts = status, attempts


# An endpoint in trouble can answer 200 with a body shaped like a completion that is no answer. What
# counts as such an error reply, concretely (each recognised from the body's structure, never by
# reading the prose, so a model's text is never mistaken for an error):
#   - a non-null top-level ``error`` member (the OpenAI error object, sent with 200 by some gateways)
#     or ``"object": "error"`` (vLLM's error body),
#   - a choice carrying its own non-null ``error`` member, or finishing with ``finish_reason`` "error"
#     (gateways whose upstream failed mid-answer) or "abort" (vLLM: the request was aborted),
#   - ``message.content`` that is neither a string nor null (``"content": 73``, a list, an object).
# Each is a ``MalformedReply``: retried like a 5xx, and never handed to a caller to be cached.
# ``content: null`` is an empty answer (a reply that spent its tokens elsewhere), not an error. Prose
# that merely reads like an error ("upstream unavailable") with a normal finish cannot be told from a
# model's text without guessing: a judge's rubric cannot parse it, so it is re-asked and then recorded
# as unparsed with the reason, never as a verdict (evalsuite.judges.stage); datagen's filters see it like any
# other text.
ERROR_FINISH_REASONS = frozenset({"error", "abort"})


def completion_choices(payload: Any, n: int | None = None) -> list[tuple[str, str]]:
    """(content, finish_reason) per choice of a chat-completion reply, by choice index; raises
    ``MalformedReply`` for anything that is not an answer (above), or not ``n`` choices when given."""
    if not isinstance(payload, dict):
        raise MalformedReply(f"the body is a {type(payload).__name__}, not a JSON object")
    if payload.get("error") is not None or payload.get("object") == "error":
        raise MalformedReply(f"the body carries an error: {str(payload.get('error') or payload)[:200]}")
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
        raise MalformedReply("no 'choices' list of objects")
    if n is not None and len(choices) != n:
        raise MalformedReply(f"{len(choices)} choices, asked for n={n}")
    out = []
    for c in sorted(choices, key=lambda c: c.get("index") or 0):
        message, finish = c.get("message"), c.get("finish_reason")
        if not isinstance(message, dict):
            raise MalformedReply("a choice has no 'message' object")
        if c.get("error") is not None or finish in ERROR_FINISH_REASONS:
            raise MalformedReply(f"a choice ended in an error (finish_reason {finish!r}): "
                                 f"{str(c.get('error') or message.get('content'))[:200]}")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise MalformedReply(f"message.content is a {type(content).__name__}, not a string: {str(content)[:100]}")
        out.append((content or "", str(finish or "stop")))
    return out


def retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 6
    backoff: float = 1.0            # first wait (s); doubles each retry
    backoff_max: float = 60.0
    retry_after_max: float = 300.0  # a Retry-After longer than this is clamped (a stuck server)

    def __post_init__(self):
        if self.max_retries < 0 or self.backoff <= 0 or self.backoff_max < self.backoff or self.retry_after_max <= 0:
            raise ValueError(f"bad retry policy {self}: need max_retries >= 0, 0 < backoff <= backoff_max, "
                             "retry_after_max > 0")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def retry_delay(attempt: int, policy: RetryPolicy, retry_after: float | None = None,
                rng: random.Random | None = None) -> float:
    """Wait before retry number ``attempt`` (1-based)."""
    base = min(policy.backoff * 2 ** (attempt - 1), policy.backoff_max)
    delay = base / 2 + (rng or random).random() * base / 2
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.retry_after_max))
    return delay


class RateLimiter:
    """At most ``per_s`` request starts per second (0 = no cap), shared by one event loop's tasks."""

    def __init__(self, per_s: float = 0.0):
        if per_s < 0:
            raise ValueError(f"requests per second must be >= 0, got {per_s}")
        self.interval = 1.0 / per_s if per_s else 0.0
        self._next = 0.0
        self._lock: asyncio.Lock | None = None

    async def wait(self) -> None:
        if not self.interval:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


Log = Callable[[str], None]


async def post_with_retries(client: httpx.AsyncClient, url: str, body: dict, parse: Callable[[Any], Any],
                            policy: RetryPolicy, limiter: RateLimiter, gate: asyncio.Semaphore,
                            log: Log | None = None, on_retry: Callable[[], None] | None = None) -> Any:
    """POST ``body`` as JSON until ``parse(reply JSON)`` succeeds, with the bounded policy above.

    ``gate`` bounds open requests (held only while a request is in flight, not while waiting);
    ``on_retry`` counts retries for the caller's stats.
    """
    last, status = "", None
    for attempt in range(policy.max_retries + 1):
        if attempt:
            delay = retry_delay(attempt, policy, retry_after)
            if on_retry:
                on_retry()
            if log:
                log(f"{last}; retry {attempt}/{policy.max_retries} in {delay:.1f}s")
            await asyncio.sleep(delay)
        retry_after = None
        await limiter.wait()
        try:
            async with gate:
                resp = await client.post(url, json=body)
        except httpx.TransportError as err:  # refused, reset, read timeout, dropped mid-body
            last, status = f"{url}: {type(err).__name__}: {err}", None
            continue
        status = resp.status_code
        if status == 200:
            try:
                return parse(resp.json())
            except (ValueError, MalformedReply, KeyError, TypeError, IndexError) as err:
                last = f"{url} answered 200 with a malformed reply ({type(err).__name__}: {err}): {resp.text[:200]!r}"
                continue
        last = f"{url} answered {status}: {resp.text[:300]}"
        if not retryable_status(status):
            raise RequestFailed(last, status, attempt + 1)
        retry_after = parse_retry_after(resp.headers.get("retry-after"))
    raise RequestFailed(f"gave up after {policy.max_retries} retries: {last}", status, policy.max_retries + 1)


async def gather_keeping_results(coros: list[Awaitable[Any]],
                                 on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    """Run every request to its end (success or bounded failure); report each success as it lands.

    One request that fails for good does not cancel the others: what finished is handed to
    ``on_result`` (to be persisted), and only then is the first failure raised. A failure to
    persist (``on_result`` raising: a full disk) stops everything at once instead: every answer
    still to come could not be kept either, and asking for it would only be thrown away.
    """
    persist_error: list[BaseException] = []
    tasks: list[asyncio.Future] = []

    async def one(i: int, coro: Awaitable[Any]) -> Any:
        result = await coro
        if on_result:
            try:
                on_result(i, result)
            except BaseException as err:
                if not persist_error:
                    persist_error.append(err)
                    for task in tasks:
                        if task is not asyncio.current_task():
                            task.cancel()
                raise
        return result

    tasks.extend(asyncio.ensure_future(one(i, c)) for i, c in enumerate(coros))
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    if persist_error:
        raise persist_error[0]
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    if failures:
        err = failures[0]
        if len(failures) > 1 and isinstance(err, RequestFailed):
            err = RequestFailed(f"{len(failures)} of {len(outcomes)} requests failed; first: {err}",
                                err.status, err.attempts)
        raise err
    return outcomes
