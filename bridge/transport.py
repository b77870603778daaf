"""The one transport interface: send a batch of APDUs, get the responses.

A batch is a list of `Step`s. The transport sends them in order and stops after the
first response whose status word is not in that step's `proceed_on` set; that last
response is still returned, so the caller sees why the batch stopped. One batch is one
round trip wherever the transport is remote (the bridge), which is why a certificate
read is a single batch.

Implementations: the in-process virtual card (`bridge.vcard.transport`), pyscard
(`bridge.transports.pcsc`), and the remote bridge over the platform's bus.
Standard library only.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from .apdu import SW, Command, Response

T = TypeVar("T")

OK_ONLY: frozenset[int] = frozenset({SW.OK})


@dataclass(frozen=True, slots=True)
class Step:
    """One command of a batch and the status words that let the batch go on."""

    command: Command
    proceed_on: frozenset[int] = field(default=OK_ONLY)


Batch = Sequence[Step]

# A sans-IO card operation: yields a batch, receives that batch's responses, and
# finally returns its result. It never touches a transport itself.
Operation = Generator[Batch, list[Response], T]


class Transport(Protocol):
    """Sends batches of APDUs to one card."""

    def transmit(self, batch: Batch) -> list[Response]:
        """Send the steps in order, stopping after the first response whose SW is not in
        its `proceed_on`; return the responses received (never more than the steps).

        Raises `bridge.errors.TransportError` (or `CommandRefused`) when the link fails.
        """
        ...


def run_batch(send: _SendOne, batch: Batch) -> list[Response]:
    """The batch rule over a one-APDU-at-a-time link (shared by local transports)."""
    responses: list[Response] = []
    for step in batch:
        response = send(step.command)
        responses.append(response)
        if response.sw not in step.proceed_on:
            break
    return responses


class _SendOne(Protocol):
    def __call__(self, command: Command, /) -> Response: ...


def drive(op: Operation[T], transport: Transport) -> T:
    """Run a sans-IO operation to completion over a transport."""
    try:
        batch = next(op)
        while True:
            batch = op.send(transport.transmit(batch))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
