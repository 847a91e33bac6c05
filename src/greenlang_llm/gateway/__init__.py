"""The gateway server: the library's providers, router and cost tracker behind two HTTP APIs.

``greenlang-llm serve`` runs it: OpenAI's ``/v1/chat/completions`` and Anthropic's
``/v1/messages`` for virtual keys (tenant, agent, allowed routes, rate limits), with a
hard-budget reservation before each call and one ledger record per request after it.
``app.create_app(config)`` builds the Starlette application; ``service.GatewayService`` is
everything behind the HTTP layer (``handler.py`` speaks HTTP for both APIs).

Nothing is imported here: ``import greenlang_llm.gateway`` stays cheap, and the server's
dependencies (Starlette, the ledger's drivers) load only with the modules that need them.
"""
