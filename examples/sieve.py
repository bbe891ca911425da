"""The concurrent prime sieve, as in Go's tour and its test suite.

A generator goroutine sends 2, 3, 4, ... down a channel; each prime found
starts a filter goroutine that passes on only the numbers it does not
divide. Run it with ``python -m gort examples/sieve.py [N]``.
"""

from __future__ import annotations

import sys

import gort


def generate(ch: gort.Chan) -> None:
    """Send the sequence 2, 3, 4, ... to ch."""
    i = 2
    while True:
        ch.send(i)
        i += 1


def filter_multiples(src: gort.Chan, dst: gort.Chan, prime: int) -> None:
    """Copy the values from src to dst, dropping multiples of prime."""
    for i in src:
        if i % prime != 0:
            dst.send(i)


def primes(n: int) -> list[int]:
    """The first n primes, found by a daisy chain of filter goroutines."""
    ch = gort.chan()
    gort.go(generate, ch)
    found = []
    for _ in range(n):
        prime = ch.recv()
        found.append(prime)
        ch1 = gort.chan()
        gort.go(filter_multiples, ch, ch1, prime)
        ch = ch1
    return found


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    for p in primes(n):
        print(p)


if __name__ == "__main__":
    gort.run(main)
