"""Foundation micro-benchmarks: price of a call, token counting, and ``import greenlang_llm``.

Run: ``python bench/bench_foundation.py`` (add ``--quick`` for a fast smoke run).
Prints µs per call as the median and the best of repeats (each times many calls),
after a warm-up that does the one-off work (catalog load, vocabulary load).
Not a test: timings never go into assertions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable

IMPORT_SNIPPET = (
    "import time; t = time.perf_counter(); import greenlang_llm; "
    "print(time.perf_counter() - t)"
)
FIRST_PRICE_SNIPPET = (
    "import time, greenlang_llm.pricing as p; t = time.perf_counter(); "
    "p.price_usage('anthropic', 'claude-3-5-sonnet-20241022', 1000, 500); print(time.perf_counter() - t)"
)
FIRST_TOKENS_SNIPPET = (
    "import time, greenlang_llm.tokens as tk; t = time.perf_counter(); "
    "tk.count_text_tokens('hello', '{model}'); print(time.perf_counter() - t)"
)

SHORT = "Explain carbon accounting in 2 sentences."
PARAGRAPH = (
    "Carbon accounting measures the greenhouse gases an organisation emits, directly and through its "
    "supply chain. Scope 1 covers direct emissions, scope 2 purchased energy, and scope 3 everything "
    "else upstream and downstream. "
) * 5  # ~1 KB


def per_call_us(fn: Callable[[], object], number: int, repeats: int) -> tuple[float, float]:
    """(median, best) µs per call over ``repeats`` runs of ``number`` calls.

    The best run is the least disturbed by other processes on a shared machine.
    """
    fn()  # warm-up: one-off loads happen here
    times = timeit.repeat(fn, number=number, repeat=repeats)
    return statistics.median(times) / number * 1e6, min(times) / number * 1e6


def subprocess_seconds(snippet: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, check=True)
        samples.append(float(out.stdout.strip()))
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and repeats")
    args = parser.parse_args()
    number, repeats, runs = (2_000, 3, 3) if args.quick else (50_000, 7, 11)

    from greenlang_llm import GenerationRequest
    from greenlang_llm.pricing import cost_nanos, estimate_cost_usd, price_usage
    from greenlang_llm.tokens import count_request_tokens, count_text_tokens

    request = GenerationRequest(
        system="You are a concise assistant.",
        messages=[
            {"role": "user", "content": "What is scope 2?"},
            {"role": "assistant", "content": "Emissions from purchased energy."},
        ],
        prompt=SHORT,
    )
    rows: list[tuple[str, tuple[float, float]]] = [
        ("price_usage (anthropic claude-3-5-sonnet, cache tokens)", per_call_us(
            lambda: price_usage("anthropic", "claude-3-5-sonnet-20241022", 2734, 52, 2304, 412),
            number, repeats)),
        ("price_usage (openai gpt-4o-mini)", per_call_us(
            lambda: price_usage("openai", "gpt-4o-mini", 1000, 200), number, repeats)),
        ("cost_nanos (exact ints only)", per_call_us(
            lambda: cost_nanos("openai", "gpt-4o-mini", 1000, 200), number, repeats)),
        ("estimate_cost_usd", per_call_us(
            lambda: estimate_cost_usd("openai", "gpt-4o-mini", 1000, 1024), number, repeats)),
        ("price_usage (unknown model, cost 0)", per_call_us(
            lambda: price_usage("openai", "no-such-model", 1000, 200), number, repeats)),
    ]
    token_number = max(200, number // 10)
    for model in ("gpt-4o", "gpt-4", "claude-3-5-sonnet"):
        rows.append((f"count_text_tokens short prompt ({model})", per_call_us(
            lambda m=model: count_text_tokens(SHORT, m), token_number, repeats)))
    rows.append(("count_text_tokens ~1 KB paragraph (gpt-4o)", per_call_us(
        lambda: count_text_tokens(PARAGRAPH, "gpt-4o"), token_number, repeats)))
    for model in ("gpt-4o", "claude-3-5-sonnet"):
        rows.append((f"count_request_tokens system + 3 turns ({model})", per_call_us(
            lambda m=model: count_request_tokens(request, m), token_number, repeats)))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Python {sys.version.split()[0]}; {os.cpu_count()} CPUs, load average {load:.2f}; "
          f"µs per call, median / best of {repeats} repeats")
    for label, (median, best) in rows:
        print(f"  {label:<58} {median:8.2f} / {best:8.2f} µs")

    print(f"One-off costs, median of {runs} fresh processes:")
    once = [
        ("import greenlang_llm", subprocess_seconds(IMPORT_SNIPPET, runs)),
        ("first price lookup (loads the genai-prices catalog)",
         subprocess_seconds(FIRST_PRICE_SNIPPET, runs)),
        ("first o200k count (loads + verifies the vocabulary)",
         subprocess_seconds(FIRST_TOKENS_SNIPPET.format(model="gpt-4o"), runs)),
        ("first cl100k count (loads + verifies the vocabulary)",
         subprocess_seconds(FIRST_TOKENS_SNIPPET.format(model="gpt-4"), runs)),
    ]
    for label, seconds in once:
        print(f"  {label:<58} {seconds * 1000:8.1f} ms")
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    print(f"(bench took {time.perf_counter() - start:.1f} s)")
    raise SystemExit(code)
