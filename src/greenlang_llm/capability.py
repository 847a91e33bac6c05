"""Which of a router's providers can serve a request as asked, before any is called.

A request that uses more than text (tools, images, structured output, logprobs, hints such as
``seed``) may ask for something a provider's API cannot express. Each provider says what it
would do with the request (``BaseLLMProvider.fit``: the hints it drops, the fields it
refuses); one that refuses a field is left out of this call's candidates — not failed, its
breaker is not charged, as it was never able to — and when none is left the caller gets an
``UnsupportedParamsError`` (400) naming each field and the providers that refused it, instead
of an answer that silently ignored what was asked.

Only rich requests come here (``GenerationRequest.rich``); the plain-text hot path skips it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import UnsupportedParamsError
from ._types import GenerationRequest

if TYPE_CHECKING:
    from .router_stats import RouteEntry

__all__ = ["able_to_serve"]


def able_to_serve(entries: list[RouteEntry], request: GenerationRequest) -> list[RouteEntry]:
    """The entries whose provider can serve ``request``; raises when none can."""
    able: list[RouteEntry] = []
    refusals: dict[str, list[str]] = {}
    for entry in entries:
        fit = getattr(entry.provider, "fit", None)
        refused = fit(request).refused if fit is not None else ()
        if not refused:
            able.append(entry)
            continue
        for name in refused:
            refusals.setdefault(name, []).append(entry.name)
    if able:
        return able
    detail = "; ".join(f"{name} (refused by {', '.join(by)})" for name, by in refusals.items())
    hint = "" if request.drop_params else " (drop_params is off, so hints are refused too)"
    raise UnsupportedParamsError(
        f"No provider that may answer can serve this request as asked: {detail}{hint}. "
        "Remove these fields, or route to a provider that supports them.",
        fields=tuple(refusals),
    )
