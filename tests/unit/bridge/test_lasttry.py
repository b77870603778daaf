"""The re-tap records on their own: per reader, the epoch in which one try left was seen."""

from __future__ import annotations

import pytest

from bridge.lasttry import LastTryRecords

R = "Reader A 00 00"


def records_with(*epochs: int, reader: str = R) -> LastTryRecords:
    """Records after cards of these epochs were put on `reader` one after another."""
    records = LastTryRecords()
    for previous, epoch in zip((None, *epochs), epochs, strict=False):
        if previous is not None:
            records.card_removed(reader, previous)
        records.card_inserted(reader, epoch)
    return records


def retap(records: LastTryRecords, old: int, new: int, reader: str = R) -> None:
    records.card_removed(reader, old)
    records.card_inserted(reader, new)


def test_one_try_left_is_armed_only_in_a_later_card_session() -> None:
    records = records_with(1)
    records.seen(R, 1, 1)
    assert records.first_seen(R) == 1
    assert not records.armed(R, 1) and not records.spend(R, 1)
    retap(records, 1, 2)
    assert records.armed(R, 2)
    assert records.spend(R, 2)  # once
    assert not records.armed(R, 2) and not records.spend(R, 2)
    assert records.first_seen(R) is None


def test_a_later_sighting_does_not_overwrite_the_first() -> None:
    records = records_with(1)
    records.seen(R, 1, 1)
    retap(records, 1, 2)
    records.seen(R, 2, 1)  # the re-tapped card's own tries read
    assert records.first_seen(R) == 1 and records.armed(R, 2)


@pytest.mark.parametrize("tries", [3, 2, 0, None], ids=["3", "2", "locked", "verified"])
def test_any_other_count_clears_the_record(tries: int | None) -> None:
    records = records_with(1)
    records.seen(R, 1, 1)
    retap(records, 1, 2)
    records.seen(R, 2, tries)
    assert records.first_seen(R) is None and not records.armed(R, 2)
    records.seen(R, 2, 1)  # one try left again: a new record, a new re-tap needed
    assert records.first_seen(R) == 2 and not records.armed(R, 2)


def test_the_record_survives_the_card_leaving_and_not_the_reader() -> None:
    records = records_with(1)
    records.seen(R, 1, 1)
    records.card_removed(R, 1)
    assert records.first_seen(R) == 1
    records.reader_removed(R)
    assert records.first_seen(R) is None
    records.card_inserted(R, 2)
    assert not records.armed(R, 2)


def test_a_sighting_from_a_card_that_left_is_ignored() -> None:
    """It raced the removal; recording it after a reader was unplugged would revive a
    record the unplugging dropped."""
    records = records_with(1)
    records.card_removed(R, 1)
    records.seen(R, 1, 1)
    assert records.first_seen(R) is None
    records.card_inserted(R, 2)
    records.seen(R, 1, 1)
    assert records.first_seen(R) is None


def test_only_the_card_on_the_reader_may_spend() -> None:
    records = records_with(1)
    records.seen(R, 1, 1)
    retap(records, 1, 2)
    assert not records.armed(R, 1) and not records.spend(R, 1)  # the old card session
    assert not records.armed(R, 3)  # a card session that is not on the reader
    records.card_removed(R, 2)
    assert not records.armed(R, 2)  # nothing on the reader
    assert records.first_seen(R) == 1


def test_readers_are_independent() -> None:
    other = "Reader B 00 00"
    records = records_with(1)
    records.card_inserted(other, 2)
    records.seen(R, 1, 1)
    assert records.first_seen(other) is None and not records.armed(other, 2)
    records.seen(other, 2, 1)
    retap(records, 1, 3)
    assert records.armed(R, 3) and not records.armed(other, 2)


def test_a_card_view_speaks_for_its_own_card_session() -> None:
    records = records_with(1)
    first = records.card(R, 1)
    first.seen(1)
    assert not first.armed()
    retap(records, 1, 2)
    second = records.card(R, 2)
    assert not first.armed() and second.armed()
    assert second.spend() and not second.spend()


def test_a_card_session_nobody_was_seen_starting_is_no_retap() -> None:
    """The watcher saw the ATR change while the card stayed on the reader."""
    records = records_with(1)
    records.seen(R, 1, 1)
    records.card_removed(R, 1)
    records.card_inserted(R, 2, retap=False)
    assert records.first_seen(R) == 2 and not records.armed(R, 2)
    retap(records, 2, 3)
    assert records.armed(R, 3)
    empty = records_with(1)
    empty.card_inserted(R, 2, retap=False)  # nothing recorded: nothing to move
    assert empty.first_seen(R) is None
