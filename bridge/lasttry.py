"""The re-tap rule: the last PIN try only in a card session begun after it was seen.

With one try left, a wrong PIN locks the card, and only a municipal office can reset
it (rule 5 of the architecture, "never lock a card"). The page's confirmation cannot
guard that try on its own: a script holding a staff cookie drives the page and the
platform exactly as a person would, and holds the bridge's public sealing key too, so
nothing the page or the platform checks tells a person from a script. The bridge can,
as a security key does with its touch: a card taken off the reader and put back is a
hand. So, per reader, the bridge remembers the epoch of the card session in which it
first saw "one try left"; the last try may be spent only in a card session of a
strictly larger epoch (the card left the reader and a card came back), and only once.

What counts and what does not (docs/bridge.md, "The last try"):

- seen: the card's answer to a data-less VERIFY (tries read) or to a VERIFY with data,
  as the firewall observed it on EF 0018 of JPKI-AP; 63C1 records the epoch unless an
  older one is recorded (keeping the older keeps the arming), any other count clears
  the record (fail closed: the next "one try left" needs a new re-tap);
- an observation from a card no longer on its reader is ignored (it raced a removal);
- removing the card keeps the record (that is the re-tap); removing the reader drops
  it; a reset of the card (ours, or another application's) is not an insertion and
  changes no epoch (pyscard's card monitor compares the (reader, ATR) pairs present,
  and a reset keeps both), and should a card answer a reset with another ATR, the
  monitor reports a removal and an insertion in one event, which the bridge takes as
  a new card session but not as a re-tap (`retap=False`); a bridge restart forgets
  everything (fail closed).

Standard library only, no I/O; thread-safe (the firewalls of several readers report
from the command threads while the reader watcher inserts and removes cards).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


class LastTryRecords:
    """Per reader: the epoch in which one try left was first seen, and the card on it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first_seen: dict[str, int] = {}
        self._on_reader: dict[str, int] = {}  # reader -> epoch of the card on it now

    # -- reader events ---------------------------------------------------------------

    def card_inserted(self, reader: str, epoch: int, *, retap: bool = True) -> None:
        """A card session of `epoch` began on `reader` (a card was put on it).

        `retap=False`: nobody was seen taking a card off (the watcher saw the card's ATR
        change while it stayed present): a record moves up to `epoch`, unarmed.
        """
        with self._lock:
            self._on_reader[reader] = epoch
            if not retap and reader in self._first_seen:
                self._first_seen[reader] = epoch

    def card_removed(self, reader: str, epoch: int) -> None:
        """The card of `epoch` left `reader`; the record stays (the re-tap's first half)."""
        with self._lock:
            if self._on_reader.get(reader) == epoch:
                del self._on_reader[reader]

    def reader_removed(self, reader: str) -> None:
        """`reader` was unplugged: forget its record."""
        with self._lock:
            self._on_reader.pop(reader, None)
            self._first_seen.pop(reader, None)

    # -- what the card said, and the guard's questions -------------------------------

    def seen(self, reader: str, epoch: int, tries: int | None) -> None:
        """The card of `epoch` on `reader` said it has `tries` left (None: verified)."""
        with self._lock:
            if self._on_reader.get(reader) != epoch:
                return  # that card has left the reader since
            if tries == 1:
                self._first_seen.setdefault(reader, epoch)
            else:
                self._first_seen.pop(reader, None)

    def armed(self, reader: str, epoch: int) -> bool:
        """May the card of `epoch` on `reader` spend its last try now?"""
        with self._lock:
            return self._armed(reader, epoch)

    def spend(self, reader: str, epoch: int) -> bool:
        """Use the arming up before the last try is sent; False if it was not armed."""
        with self._lock:
            if not self._armed(reader, epoch):
                return False
            del self._first_seen[reader]
            return True

    def first_seen(self, reader: str) -> int | None:
        """The epoch in which one try left was first seen on `reader` (None: no record)."""
        with self._lock:
            return self._first_seen.get(reader)

    def card(self, reader: str, epoch: int) -> CardLastTry:
        """The records as one card session's firewall sees them."""
        return CardLastTry(self, reader, epoch)

    def _armed(self, reader: str, epoch: int) -> bool:
        first = self._first_seen.get(reader)
        return self._on_reader.get(reader) == epoch and first is not None and first < epoch


@dataclass(frozen=True, slots=True)
class CardLastTry:
    """One card session's view of the records (a `bridge.firewall.LastTry`)."""

    records: LastTryRecords
    reader: str
    epoch: int

    def seen(self, tries: int | None) -> None:
        """The card said it has `tries` left (None: verified)."""
        self.records.seen(self.reader, self.epoch, tries)

    def armed(self) -> bool:
        """May this card session spend the last try now?"""
        return self.records.armed(self.reader, self.epoch)

    def spend(self) -> bool:
        """Use the arming up; False if it was not armed."""
        return self.records.spend(self.reader, self.epoch)
