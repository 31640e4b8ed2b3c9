"""Progress that reads well wherever it goes: tqdm's bar on a terminal, a plain log line now
and then where stderr is a file or a pipe (`make demo > demo.log` would otherwise hold the
whole training as one line of carriage-return updates)."""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO

from tqdm import tqdm

logger = logging.getLogger(__name__)

# Where stderr is no terminal: one line at least this many seconds apart (and one at the end).
PLAIN_INTERVAL_S = 30.0


def is_terminal(stream: TextIO | None) -> bool:
    """Whether `stream` is a terminal (a closed or replaced stream counts as none)."""
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class PlainProgress:
    """The part of tqdm's interface the loops use (update, set_postfix, iteration, close, with),
    written as one log line every `interval_s` seconds or `every` steps and one at `close`:
    '<desc>: 120/400 it (iteration 920), 0.52 s/it, D_A 0.251, G_A 0.310'."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, initial: int = 0,
                 desc: str = "", unit: str = "it", first_step: int | None = None, interval_s: float = PLAIN_INTERVAL_S,
                 every: int | None = None, disable: bool = False, clock: Callable[[], float] = time.monotonic):
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable, self.total, self.n, self.desc, self.unit = iterable, total, initial, desc, unit
        self.first_step, self.interval_s, self.every, self.disable, self.clock = (first_step, interval_s, every,
                                                                                   disable, clock)
        self.postfix: dict[str, Any] = {}
        self.started, self.start_n = clock(), initial
        self.last_line, self.last_n = self.started, initial
        self.closed = False

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update(1)
        self.close()

    def set_postfix(self, values: dict[str, Any] | None = None, refresh: bool = True, **more: Any) -> None:
        self.postfix = {**(values or {}), **more}

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if (now - self.last_line >= self.interval_s
                or (self.every is not None and self.n - self.last_n >= self.every)):
            self.write_line(now)

    def close(self) -> None:
        """Write the last line (the epoch's end) unless nothing happened since the one before."""
        if not self.closed and self.n != self.last_n:
            self.write_line(self.clock())
        self.closed = True

    def write_line(self, now: float) -> None:
        self.last_line, self.last_n = now, self.n
        if not self.disable:
            logger.info("%s", self.line(now))

    def line(self, now: float) -> str:
        done = self.n - self.start_n
        parts = [f"{self.n}/{self.total} {self.unit}" if self.total else f"{self.n} {self.unit}"]
        if self.first_step is not None:
            parts[0] += f" (iteration {self.first_step + done})"
        if done:
            parts.append(f"{(now - self.started) / done:.3g} s/{self.unit}")
        parts += [f"{key} {value}" for key, value in self.postfix.items()]
        return f"{self.desc}: " * bool(self.desc) + ", ".join(parts)


def progress(iterable: Iterable | None = None, *, total: int | None = None, initial: int = 0, desc: str = "",
             unit: str = "it", disable: bool = False, first_step: int | None = None,
             stream: TextIO | None = None, interval_s: float = PLAIN_INTERVAL_S, every: int | None = None,
             **bar_options: Any) -> tqdm | PlainProgress:
    """tqdm's bar where `stream` (default: sys.stderr, where tqdm writes) is a terminal, else
    a `PlainProgress` that logs a line every `interval_s` seconds or `every` steps and at the
    end. `first_step` is the overall count at `initial` (the run's iteration), shown in the
    plain line; `bar_options` go to tqdm only (dynamic_ncols, leave)."""
    if is_terminal(sys.stderr if stream is None else stream):
        return tqdm(iterable, total=total, initial=initial, desc=desc, unit=unit, disable=disable, **bar_options)
    return PlainProgress(iterable, total=total, initial=initial, desc=desc, unit=unit, first_step=first_step,
                         interval_s=interval_s, every=every, disable=disable)
