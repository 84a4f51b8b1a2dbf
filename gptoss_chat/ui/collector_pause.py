"""Hold Python's full garbage collections off while a turn streams.

A full (generation 2) collection walks every object the process tracks: 150,000-200,000 after a
long turn (Textual widgets, styles, strips), 100-235 ms each on the 2-core machine, and a
12,000-token turn triggered 4-5 of them at random moments, each a stall the stream had to catch
up from. During a turn, `gc.freeze()` moves everything alive into the permanent generation,
which collections skip, and a high threshold for generation 2 defers full collections of what
the turn creates; the young generations are still collected as usual. Some time after the turn
(not in the moment it ends, when the screen is catching up) both are given back, and what the
turn or earlier ones left as garbage is collected normally from then on.
"""

from __future__ import annotations

import gc

from textual.timer import Timer
from textual.widget import Widget

HELD_GEN2_THRESHOLD = 1_000
"""Collections of generation 1 before one of generation 2, while held (the default is 10)."""
RELEASE_AFTER_SECONDS = 2.0


class CollectorPause:
    def __init__(self) -> None:
        self._saved_threshold: tuple[int, int, int] | None = None
        self._release_timer: Timer | None = None

    @property
    def held(self) -> bool:
        return self._saved_threshold is not None

    def hold(self) -> None:
        """At the start of a turn (again if one is already held: the new objects join)."""
        if self._release_timer is not None:
            self._release_timer.stop()
            self._release_timer = None
        if self._saved_threshold is None:
            self._saved_threshold = gc.get_threshold()
            first, second, _ = self._saved_threshold
            gc.set_threshold(first, second, HELD_GEN2_THRESHOLD)
        gc.freeze()

    def release_later(self, owner: Widget) -> None:
        """At the end of a turn: release after the screen has settled, unless a turn starts."""
        if self.held and self._release_timer is None:
            self._release_timer = owner.set_timer(RELEASE_AFTER_SECONDS, self.release)

    def release(self) -> None:
        self._release_timer = None
        if self._saved_threshold is not None:
            gc.unfreeze()
            gc.set_threshold(*self._saved_threshold)
            self._saved_threshold = None
