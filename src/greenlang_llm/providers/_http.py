"""What the Anthropic and OpenAI providers share: keys, base URLs, the pool, retries.

Both providers talk HTTP directly over one pooled ``aiohttp.ClientSession`` per
provider instance (keep-alive, ``max_connections``), created lazily inside the
running event loop, because the vendor SDKs add 0.4-0.8 ms and a heavy import
to every call. Only the payloads differ per API; those come from ``wire/``.

Safety rules enforced here, once, for both:

- The API key is resolved from the argument, else the environment, at the
  first call (so providers can be built before keys exist), wrapped in
  :class:`Secret` and never put into a repr, a log record or an exception
  message (upstream error messages are scrubbed of it too).
- With ``GREENLANG_LLM_LOOPBACK_ONLY=1`` a base URL whose host is not
  loopback is refused before any connection: tests can never reach a real API.
- Transport failures become our error tree: timeouts are
  ``ProviderTimeoutError``, resets and refusals ``ProviderConnectionError``
  (both retryable); HTTP errors go through ``error_from_http``.
- Retries use ``RetryPolicy`` (sleep, clock and RNG injectable); an optional
  rate limiter is acquired before every attempt and cooled down by a 429's
  ``retry-after``. A timeout without an answer (nothing before ``timeout``, or
  no first token before ``first_token_timeout``) is not retried while the
  router call this attempt belongs to has another candidate waiting
  (``retry.FALLBACK``): a silent upstream is hung, not unlucky, so the router
  fails over after one timeout. Used alone, or as the last candidate, the
  provider retries it as before.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, Unpack
from urllib.parse import urlsplit

import aiohttp
import orjson

from .._errors import (
    AuthenticationError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServiceUnavailableError,
    error_from_http,
)
from .._types import GenerationRequest, GenerationResponse, ProviderHealth, StreamChunk, TokenUsage
from ..retry import FALLBACK, Backoff, RetryPolicy, _asyncio_sleep
from ..wire._common import FITS, Fit
from ._stream_reader import SSEReader, WireStreamParser
from .base_provider import BaseLLMProvider
from .http_options import HttpOptions, check_option_names

if TYPE_CHECKING:
    from ..content import Delta
    from ..wire._common import ParsedResponse

__all__ = ["LOOPBACK_ENV", "HttpProvider", "Secret", "check_base_url", "is_loopback_host"]

LOOPBACK_ENV = "GREENLANG_LLM_LOOPBACK_ONLY"
USER_AGENT = "greenlang-llm/0.1"

logger = logging.getLogger("greenlang_llm.providers")
T = TypeVar("T")


class Secret:
    """An API key that cannot leak through ``repr``/``str``/f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # pickling a provider must not write the key to disk
        raise TypeError("Secret cannot be pickled")


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, provider: str) -> None:
    """Refuse malformed URLs, and non-loopback hosts under the loopback guard."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequestError(f"{provider}: base URL must be http(s)://host[:port][/path], got {url!r}")
    if os.environ.get(LOOPBACK_ENV, "") not in ("", "0") and not is_loopback_host(parts.hostname):
        raise InvalidRequestError(
            f"{provider}: {LOOPBACK_ENV} is set and base URL host {parts.hostname!r} is not loopback; "
            "refusing to contact a real provider"
        )


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() or None if value is not None else None


def _price_usage() -> Callable[..., TokenUsage]:
    """``pricing.price_usage``, imported on first use (the catalog is heavy) and then cached."""
    global _PRICE_USAGE
    if _PRICE_USAGE is None:
        from ..pricing import price_usage

        _PRICE_USAGE = price_usage
    return _PRICE_USAGE


_PRICE_USAGE: Callable[..., TokenUsage] | None = None


def _rich_chunk(deltas: list[Delta], provider: str, model: str) -> StreamChunk:
    """A chunk of deltas beyond text (thinking, tool calls); ``text`` is the text among them."""
    text = "".join(d.text for d in deltas if d.kind == "text")
    return StreamChunk(text, provider=provider, model_id=model, deltas=tuple(deltas))


class HttpProvider(BaseLLMProvider):
    """Base of the HTTP providers: configuration, pool, retry loop, health check.

    Subclasses set the class attributes and implement ``_auth_headers``.
    """

    key_env: ClassVar[str]
    base_url_env: ClassVar[str]
    default_base_url: ClassVar[str]
    models_path: ClassVar[str]
    """Path of the models list below the base URL: the health probe."""

    def __init__(
        self,
        model_id: str,
        api_key: str | None = None,
        max_retries: int = 4,
        base_delay: float = 1.0,
        max_delay: float = 8.0,
        timeout: float = 60.0,
        max_connections: int = 100,
        base_url: str | None = None,
        **options: Unpack[HttpOptions],
    ) -> None:
        """The positional parameters in one order for every HTTP provider (a subclass keeps the
        order of its public contract and forwards them here); the keyword-only ones are
        ``HttpOptions``."""
        check_option_names(type(self).__name__, options)
        session = options.get("session")
        clock = options.get("clock") or time.monotonic
        first_token_timeout = options.get("first_token_timeout")
        idle_timeout = options.get("idle_timeout")
        health_timeout = options.get("health_timeout", 10.0)
        if not isinstance(model_id, str) or not model_id:
            raise InvalidRequestError(f"{self.name}: model_id must be a non-empty string")
        for label, value in (("timeout", timeout), ("health_timeout", health_timeout)):
            if not value > 0:
                raise InvalidRequestError(f"{self.name}: {label} must be positive, got {value!r}")
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
            raise InvalidRequestError(f"{self.name}: max_connections must be a positive integer")
        self.model_id = model_id
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = float(timeout)
        self.max_connections = max_connections
        self.first_token_timeout = float(first_token_timeout or timeout)
        self.idle_timeout = float(idle_timeout or timeout)
        self.health_timeout = float(health_timeout)
        self._api_key = Secret(api_key) if api_key else None
        self._base_url_arg = base_url.rstrip("/") if base_url else None
        self._session = session
        self._owns_session = session is None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._rate_limiter = options.get("rate_limiter")
        self._clock = clock
        self.retry_policy = RetryPolicy(
            max_retries=max_retries,
            backoff=Backoff(base_delay, max_delay),
            max_retry_after=options.get("max_retry_after", 60.0),
            sleep=options.get("sleep") or _asyncio_sleep,
            clock=clock,
            rng=options.get("rng") or random.Random(),
        )
        self._extra_headers = dict(options.get("extra_headers") or {})
        self._headers: dict[str, str] | None = None
        self._checked: tuple[str, str] | None = None
        self._timeouts = aiohttp.ClientTimeout(total=self.timeout)
        self.last_error: str | None = None
        self.last_latency_ms: float | None = None

    # -- configuration -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Argument, else ``*_BASE_URL``, else the public endpoint (read at call time)."""
        return self._base_url_arg or (_env(self.base_url_env) or self.default_base_url).rstrip("/")

    def _key(self) -> str:
        if self._api_key is None:
            value = _env(self.key_env)
            if value is None:
                raise AuthenticationError(
                    f"{self.name}: no API key: pass api_key= or set the {self.key_env} environment variable",
                    provider=self.name,
                )
            self._api_key = Secret(value)
        return self._api_key.reveal()

    def _auth_headers(self, key: str) -> dict[str, str]:
        raise NotImplementedError

    def _prepare(self) -> tuple[str, dict[str, str]]:
        """Base URL and request headers; raises before any I/O if either is unusable."""
        base = self.base_url
        guard = os.environ.get(LOOPBACK_ENV, "")
        if self._checked != (base, guard):  # the URL check parses; do it once per setting
            check_base_url(base, self.name)
            self._checked = (base, guard)
        if self._headers is None:
            headers = {
                "accept": "application/json",
                "content-type": "application/json",
                "user-agent": USER_AGENT,
            }
            headers.update(self._auth_headers(self._key()))
            headers.update(self._extra_headers)
            self._headers = headers
        return base, self._headers

    def __repr__(self) -> str:
        key = "set" if (self._api_key is not None or _env(self.key_env)) else "missing"
        return (
            f"{type(self).__name__}(model_id={self.model_id!r}, base_url={self.base_url!r}, "
            f"api_key=<{key}>, max_retries={self.max_retries}, timeout={self.timeout})"
        )

    # -- session -------------------------------------------------------------------------------

    def _client(self) -> aiohttp.ClientSession:
        """The pooled session of this provider, made in (and bound to) the running loop."""
        session = self._session
        if not self._owns_session and session is not None:
            return session
        loop = asyncio.get_running_loop()
        # the loop identity first: a C call and a pointer compare; ``closed`` is a Python property
        if self._session_loop is not loop or session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections, ttl_dns_cache=300)
            # ``timeout`` is generate's per-attempt limit, set here so no call builds its own;
            # our user-agent header replaces aiohttp's (it only adds one when absent)
            session = aiohttp.ClientSession(connector=connector, timeout=self._timeouts)
            self._session, self._session_loop = session, loop
        return session

    async def close(self) -> None:
        """Close the pool (an injected session belongs to its owner and stays open)."""
        session, self._session = self._session, None
        if (
            self._owns_session and session is not None and not session.closed
            and self._session_loop is asyncio.get_running_loop()
        ):
            await session.close()
        self._session_loop = None

    # -- errors --------------------------------------------------------------------------------

    def _scrub(self, error: ProviderError) -> ProviderError:
        """Remove the key from an error's text, whatever echoed it (upstream body, OS error)."""
        key = self._api_key.reveal() if self._api_key is not None else None
        if key and key in error.message:
            error.message = error.message.replace(key, "[redacted]")
            error.args = (error.message, *error.args[1:])
        if error.provider is None:
            error.provider = self.name
        return error

    def _http_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        error = self._scrub(error_from_http(status, headers, body, self.name))
        if isinstance(error, RateLimitError) and error.retry_after and self._rate_limiter is not None:
            self._rate_limiter.cool_down(error.retry_after)
        return error

    def _transport_error(self, exc: BaseException, what: str) -> ProviderError:
        """Map an aiohttp/OS failure; never includes headers, so never the key."""
        error: ProviderError
        if isinstance(exc, TimeoutError):
            error = ProviderTimeoutError(f"{self.name}: timed out {what}", provider=self.name)
        elif isinstance(exc, aiohttp.ClientPayloadError):
            error = ProviderConnectionError(f"{self.name}: connection lost {what}", provider=self.name)
        else:
            detail = str(exc) or type(exc).__name__
            error = ProviderConnectionError(
                f"{self.name}: {type(exc).__name__} {what}: {detail}", provider=self.name
            )
        return self._scrub(error)

    # -- calls ---------------------------------------------------------------------------------

    def _attempt_timeout(self, limit: float, deadline: float | None) -> float:
        if deadline is None:
            return limit
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise ProviderTimeoutError(f"{self.name}: call deadline passed", provider=self.name)
        return min(limit, remaining)

    def _limiter_tokens(self, request: GenerationRequest) -> int:
        """Worst-case tokens to take from a tokens-per-minute bucket (0 when it has none)."""
        limiter = self._rate_limiter
        if limiter is None or getattr(limiter, "tokens_per_minute", None) is None:
            return 0
        return self.count_tokens(request) + request.max_output_tokens

    async def _throttle(self, tokens: int) -> None:
        if self._rate_limiter is not None:
            await self._rate_limiter.acquire(tokens)

    def _settle(self, debited: int, usage: TokenUsage) -> None:
        """Give back (or take) the difference between the worst case and the real usage."""
        if debited and self._rate_limiter is not None:
            self._rate_limiter.adjust_tokens(usage.total_tokens - debited)

    async def _open_stream(
        self, url: str, headers: Mapping[str, str], body: bytes, deadline: float | None
    ) -> aiohttp.ClientResponse:
        """POST a streaming request; return the open 2xx response (caller closes it)."""
        limit = self._attempt_timeout(self.first_token_timeout, deadline)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=limit, sock_read=self.idle_timeout)
        try:
            async with asyncio.timeout(limit):
                resp = await self._client().post(url, data=body, headers=headers, timeout=timeout)
                if resp.status >= 300:
                    try:
                        data = await resp.read()
                    finally:
                        resp.release()
                    raise self._http_error(resp.status, resp.headers, data)
                return resp
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise self._transport_error(exc, "opening the stream") from None

    async def _retry(
        self, attempt: Callable[[], Awaitable[T]], first: ProviderError, deadline: float | None, what: str
    ) -> T:
        """Hand a failed first attempt to ``RetryPolicy.call``, which decides on ``first``.

        The first attempt runs outside the policy so the common case pays for no
        extra frames; replaying its error keeps the policy's semantics exact.
        """
        pending: ProviderError | None = first

        async def again() -> T:
            nonlocal pending
            if pending is not None:
                error, pending = pending, None
                raise error
            return await attempt()

        def on_retry(error: ProviderError, retry_number: int, wait: float) -> None:
            logger.info(
                "%s %s: retry %d/%d in %.3fs after %s",
                self.name, what, retry_number + 1, self.retry_policy.max_retries, wait, error.message,
            )

        return await self.retry_policy.call(again, deadline=deadline, on_retry=on_retry, give_up=self._hung)

    def _hung(self, error: ProviderError) -> bool:
        """A timeout with no answer while the router call has another candidate: fail over now.

        Only this provider's own timeouts are ``ProviderTimeoutError`` (an upstream 408 is a
        ``ServiceUnavailableError``, retried as before), so the upstream sent nothing usable
        in time: it is hung, and a retry would cost the caller another full timeout."""
        if not isinstance(error, ProviderTimeoutError):
            return False
        probe = FALLBACK.get()
        return probe is not None and probe.has_fallback(self)

    async def _get_json_status(self, path: str) -> tuple[int, Mapping[str, str], bytes]:
        base, headers = self._prepare()
        timeout = aiohttp.ClientTimeout(total=min(self.timeout, self.health_timeout))
        try:
            async with self._client().get(base + path, headers=headers, timeout=timeout) as resp:
                return resp.status, resp.headers, await resp.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise self._transport_error(exc, "during the health check") from None

    async def health_check(self) -> ProviderHealth:
        """``GET {models}``: healthy on 2xx. Never raises; remembers latency and last error."""
        started = time.perf_counter()
        try:
            status, headers, body = await self._get_json_status(self.models_path)
            if status >= 300:
                raise self._http_error(status, headers, body)
        except ProviderError as error:
            self.last_error = str(self._scrub(error))
            return ProviderHealth(False, (time.perf_counter() - started) * 1000.0, self.last_error)
        except Exception as exc:  # a probe must never take its caller down
            self.last_error = f"{self.name}: health check failed: {type(exc).__name__}"
            return ProviderHealth(False, (time.perf_counter() - started) * 1000.0, self.last_error)
        self.last_latency_ms = (time.perf_counter() - started) * 1000.0
        self.last_error = None
        return ProviderHealth(True, self.last_latency_ms, None)

    # -- the two calls -------------------------------------------------------------------------

    generate_path: ClassVar[str]
    """Path of the generation endpoint below the base URL."""

    def _build_body(self, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        raise NotImplementedError

    def _parse_body(self, raw: dict[str, Any], request: GenerationRequest) -> ParsedResponse:
        raise NotImplementedError

    def _new_stream_parser(self, request: GenerationRequest) -> WireStreamParser:
        raise NotImplementedError

    def _cache_write_1h(self, raw_usage: Any) -> int:
        """Cache-write tokens with a 1-hour TTL (priced higher); only Anthropic reports them."""
        return 0

    def _usage(
        self, reported: TokenUsage | None, text: str, request: GenerationRequest, raw_usage: Any = None
    ) -> TokenUsage:
        """Price the reported usage; count locally (``estimated=True``) when none was reported,
        so tokens produced are never free."""
        price_usage = _price_usage()
        if reported is None:
            from ..tokens import count_request_tokens, count_text_tokens

            return price_usage(
                self.catalog_id, self.model_id,
                count_request_tokens(request, self.model_id), count_text_tokens(text, self.model_id),
                estimated=True,
            )
        return price_usage(
            self.catalog_id, self.model_id, reported.input_tokens, reported.output_tokens,
            reported.cache_read_tokens, reported.cache_write_tokens,
            cache_write_1h_tokens=min(self._cache_write_1h(raw_usage), reported.cache_write_tokens),
            reasoning_tokens=reported.reasoning_tokens,
        )

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        started = time.perf_counter()
        base, headers = self._prepare()
        url = base + self.generate_path
        body = orjson.dumps(self._build_body(request, False))
        deadline = None if request.timeout is None else self._clock() + request.timeout
        limiter = self._rate_limiter
        debit = 0 if limiter is None else self._limiter_tokens(request)
        # our own session carries ``timeout`` as its default; otherwise say it per request
        own_default = self._owns_session and deadline is None

        async def attempt() -> tuple[dict[str, Any], ParsedResponse]:
            if limiter is not None:
                await limiter.acquire(debit)
            try:
                if own_default:
                    ctx = self._client().post(url, data=body, headers=headers)
                else:
                    limit = self._attempt_timeout(self.timeout, deadline)
                    ctx = self._client().post(
                        url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=limit)
                    )
                async with ctx as resp:
                    status, data = resp.status, await resp.read()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise self._transport_error(exc, "waiting for the answer") from None
            if status >= 300:
                raise self._http_error(status, resp.headers, data)
            try:
                raw = orjson.loads(data)
            except orjson.JSONDecodeError:
                raw = None
            if not isinstance(raw, dict):
                raise ServiceUnavailableError(
                    f"{self.name}: HTTP {status} with a body that is not a JSON object",
                    provider=self.name, status_code=status,
                )
            return raw, self._parse_body(raw, request)

        try:
            raw, parsed = await attempt()
        except ProviderError as error:
            raw, parsed = await self._retry(attempt, error, deadline, "generate")
        usage = self._usage(parsed.usage, parsed.text, request, raw.get("usage"))
        if debit:
            self._settle(debit, usage)
        latency_ms = (time.perf_counter() - started) * 1000.0
        self.last_latency_ms = latency_ms
        return GenerationResponse(
            text=parsed.text,
            provider=self.catalog_id,
            model_id=parsed.model or self.model_id,
            usage=usage,
            finish_reason=parsed.finish_reason,
            latency_ms=latency_ms,
            raw=raw,
            content=parsed.content,
            refusal=parsed.refusal,
            logprobs=parsed.logprobs,
            dropped_params=self.fit(request).dropped if request.rich else (),
            api=self.api,
        )

    def fit(self, request: GenerationRequest) -> Fit:
        """What this provider's API drops or cannot express of ``request`` (``wire.<api>.fit``)."""
        if not request.rich:
            return FITS
        return self._fit(request)

    def _fit(self, request: GenerationRequest) -> Fit:
        raise NotImplementedError

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamChunk]:
        """Deltas as they arrive, then one chunk with ``finish_reason`` and priced usage.

        Failures before the first delta are retried like ``generate``; after it,
        any cut or error event raises ``StreamInterruptedError`` (with the text so
        far) and is never retried here. Closing the generator early closes the
        connection at once.
        """
        base, headers = self._prepare()
        url = base + self.generate_path
        body = orjson.dumps(self._build_body(request, True))
        deadline = None if request.timeout is None else self._clock() + request.timeout
        debit = self._limiter_tokens(request)

        async def attempt() -> tuple[SSEReader, str | list[Delta] | None]:
            await self._throttle(debit)
            limit = self._attempt_timeout(self.first_token_timeout, deadline)
            # one clock for opening and the first delta: first_token_timeout is the whole wait
            first_by = self._clock() + limit
            resp = await self._open_stream(url, headers, body, deadline)
            reader = SSEReader(resp, self._new_stream_parser(request), self.name)
            try:
                async with asyncio.timeout(max(0.0, first_by - self._clock())):
                    return reader, await reader.next_text()
            except TimeoutError:
                reader.close()
                raise ProviderTimeoutError(
                    f"{self.name}: no stream data within {limit:g}s (first_token_timeout)", provider=self.name
                ) from None
            except BaseException as exc:
                reader.close()
                if isinstance(exc, ProviderError):
                    raise self._scrub(exc) from None
                raise

        try:
            reader, text = await attempt()
        except ProviderError as error:
            reader, text = await self._retry(attempt, error, deadline, "stream")
        # idle_timeout bounds the gap between two deltas (pings and empty events do not reset
        # it, unlike the socket read timeout), capped by the call's deadline
        loop_now = asyncio.get_running_loop().time()
        reader.watch(self.idle_timeout, None if deadline is None else loop_now + deadline - self._clock())
        name, model = self.catalog_id, self.model_id
        try:
            while text is not None:
                if isinstance(text, str):
                    yield StreamChunk(text, provider=name, model_id=model)
                else:
                    yield _rich_chunk(text, name, model)
                try:
                    text = await reader.next_text()
                except ProviderError as error:
                    raise self._scrub(error) from None
            try:
                parsed = reader.parser.finish()
            except ProviderError as error:  # scrubbed like every other stream error
                raise self._scrub(error) from None
            await reader.drain()
            raw_usage = getattr(reader.parser, "raw_usage", None)  # Anthropic: the 5m/1h cache split
            usage = self._usage(parsed.usage, parsed.text, request, raw_usage)
            self._settle(debit, usage)
            yield StreamChunk(
                "", finish_reason=parsed.finish_reason, usage=usage,
                provider=self.catalog_id, model_id=parsed.model or self.model_id,
                dropped_params=self.fit(request).dropped if request.rich else (),
                stop_sequence=parsed.stop_sequence,
            )
        finally:
            reader.close()
