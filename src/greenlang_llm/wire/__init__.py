"""Wire formats of the two APIs we speak, shared by providers, simulator and gateway.

``sse`` frames event streams; ``anthropic`` and ``openai`` are one module per API,
each holding both sides of it (the providers' requests and reply parsers, the
simulator's and gateway's request validation and reply writers), its error bodies,
stop reasons and usage mapping.
"""
