"""`python -m bridge run --reader SUBSTRING`: a bridge serves only its own readers."""

from __future__ import annotations

from bridge.__main__ import build_parser
from bridge.readers import PcscReaders


def test_only_matching_readers_are_served() -> None:
    watcher = PcscReaders(only="vpcd 27709 00 01")
    assert watcher.serves("Ichimai vpcd 27709 00 01")
    assert not watcher.serves("Ichimai vpcd 27709 00 00")
    assert PcscReaders().serves("anything")


def test_the_command_line_takes_a_reader() -> None:
    args = build_parser().parse_args(["run", "--reader", "vpcd 1"])
    assert args.reader == "vpcd 1"
    assert build_parser().parse_args(["run"]).reader is None
