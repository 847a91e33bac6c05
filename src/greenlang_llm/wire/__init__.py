"""Wire formats of the two APIs we speak, shared by providers, simulator and gateway.

``sse`` frames event streams; ``anthropic`` and ``openai`` hold each API's
request/response shapes, error bodies, stop reasons and usage mapping.
"""
