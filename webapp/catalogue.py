"""Every outcome a person reads, in one catalogue: title, explanation, what to do.

One entry per code (the card flow's FlowCode values, the counter's, the identity and
points domains', the number-format reasons), for the citizen at a kiosk, at home or at
a till, and where the counter's staff need other words, for them (`STAFF`). English
source strings, translated by Flask-Babel like every other word of the platform
(webapp/translations/ja): the domains raise codes; only the web layer words them.

`error_body(code, ...)` is the one JSON error format of the terminal APIs:
`{"code", "title", "message", "action", "final", "tries_left"?, ...}`, worded in the
request's language (or `locale`). `text(code, locale)` is one sentence, for APIs that
answer in both languages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import LazyString, force_locale
from flask_babel import lazy_gettext as _l


@dataclass(frozen=True)
class Words:
    """Title, plain explanation, and what to do next (lazy: worded when shown)."""

    title: LazyString
    explanation: LazyString | str
    action: LazyString | str = ""


@dataclass(frozen=True)
class Tone:
    """CSS modifier and icon of the counter's status line (states differ at a glance,
    not by colour alone: the icon and the title differ too)."""

    name: str  # ok | info | warn | error | offline
    icon: str


CITIZEN: dict[str, Words] = {
    "library_password_wrong": Words(
        _l("The library password is not right"),
        _l("The library's system did not accept this password for this card number."),
        _l(
            "Type the password you use on the library's website (OPAC) again. After "
            "several wrong tries, checks stop for a while."
        ),
    ),
    "library_card_not_valid": Words(
        _l("The library cannot confirm this card"),
        _l("The library's system does not accept this card number as a valid card."),
        _l("Check the number, or ask at the library's counter."),
    ),
    "library_password_throttled": Words(
        _l("Too many tries for this card"),
        _l("The password for this card number was wrong too many times."),
        _l("Please try again later, or ask at the library's counter."),
    ),
    "library_system_unavailable": Words(
        _l("The library's system cannot be reached"),
        _l("The library's own system did not answer just now. Nothing was linked."),
        _l("Please try again later, or link the card and show it once at the counter."),
    ),
    "library_password_start_again": Words(
        _l("Please enter the password again"),
        _l("The password could not be checked this time. Nothing was linked."),
        _l("Type the password again and press Link."),
    ),
    "input_refused": Words(
        _l("The request could not be accepted"),
        _l("Something in it is out of bounds. Nothing was changed."),
        _l("Check what was entered and try again."),
    ),
    "no_card": Words(
        _l("No card"),
        _l("There is no card on the card reader."),
        _l("Please place your My Number Card on the reader."),
    ),
    "card_removed": Words(
        _l("The card was removed"),
        _l("The card left the reader in the middle of the procedure, so it was ended."),
        _l("Place your card again and start over."),
    ),
    "bridge_offline": Words(
        _l("The card reader is not connected"),
        _l("This terminal cannot reach its card reader right now."),
        _l("Please wait a moment and try again. If it continues, please ask a staff member."),
    ),
    "bridge_unpaired": Words(
        _l("This card reader is not set up"),
        _l("This terminal's card reader is no longer paired with the platform."),
        _l("Please ask a staff member."),
    ),
    "reader_missing": Words(
        _l("No card reader found"),
        _l("The card reader does not seem to be connected."),
        _l("Please ask a staff member."),
    ),
    "timeout": Words(
        _l("No answer"),
        _l("Reading the card took too long."),
        _l("Place the card again and try once more."),
    ),
    "not_my_number_card": Words(
        _l("This is not a My Number Card"),
        _l("The card on the reader could not be read as a My Number Card."),
        _l("Please place your My Number Card."),
    ),
    "card_unreadable": Words(
        _l("The card could not be read"),
        _l("Something went wrong while reading the card."),
        _l("Place the card again and try once more."),
    ),
    "untrusted": Words(
        _l("This card cannot be used"),
        _l("The card's electronic certificate could not be confirmed."),
        _l("Please ask at your municipal office."),
    ),
    "expired": Words(
        _l("The certificate has expired"),
        _l("The card's user-authentication certificate is past its expiry date."),
        _l("Please renew the certificate at your municipal office."),
    ),
    "not_yet_valid": Words(
        _l("The certificate is not valid yet"),
        _l("The card's certificate has not started its validity period."),
        _l("Please ask at your municipal office."),
    ),
    "revoked": Words(
        _l("The card's certificate is revoked"),
        _l(
            "The certificate can no longer be used, for example because the card was reported lost."
        ),
        _l("Please ask at your municipal office."),
    ),
    "crl_unavailable": Words(
        _l("Cannot check right now"),
        _l("We cannot check right now whether the certificate is still valid."),
        _l("Please wait a moment and try again."),
    ),
    "wrong_pin": Words(
        _l("Wrong PIN"),
        _l("The PIN you entered is not correct."),
        _l("Please enter your correct 4-digit PIN."),
    ),
    "pin_last_try": Words(
        _l("One try left before the card locks"),
        _l("If the PIN is wrong once more, the card will be locked."),
        _l("If you are not sure of your PIN, please stop here."),
    ),
    "pin_locked": Words(
        _l("The PIN is locked"),
        _l("The PIN is locked. It can be reset at your municipal office."),
        _l("Please bring the card and an identity document to your municipal office."),
    ),
    "pin_format": Words(
        _l("The PIN is 4 digits"),
        _l("The user-authentication PIN is 4 digits."),
        _l("Please enter 4 digits."),
    ),
    "auth_failed": Words(
        _l("Identity could not be confirmed"),
        _l("Confirming your identity with the card did not succeed."),
        _l("Place the card again and try once more."),
    ),
    "flow_expired": Words(
        _l("Time is up"),
        _l("Too much time has passed, so this step is no longer valid."),
        _l("Please start over."),
    ),
    "not_registered": Words(
        _l("Not registered yet"),
        _l("This card is not registered to a MyKey ID yet."),
        _l("You can register at a kiosk. Please ask a staff member."),
    ),
    "no_link": Words(
        _l("No customer number linked"),
        _l("No customer number of this facility is linked to this card yet."),
        _l("You can link your customer number at a kiosk."),
    ),
    "session_ended": Words(
        _l("The session has ended"),
        _l("It ended because there was no activity for a while, or the card was removed."),
        _l("To continue, place your card again."),
    ),
    "busy": Words(
        _l("Working"),
        _l("The previous step is still being processed."),
        _l("Please wait a moment, then try again."),
    ),
    "service_unavailable": Words(
        _l("Temporarily unavailable"),
        _l("A temporary problem on our side stops this step. Your card and PIN are not the cause."),
        _l("Please wait a moment and try again. If it continues, please ask a staff member."),
    ),
}

STAFF: dict[str, Words] = {
    "not_registered": Words(
        _l("This card has no MyKey ID yet"),
        _l("This card is not registered to a MyKey ID."),
        _l("The citizen can register at the kiosk or at home."),
    ),
    "no_link": Words(
        _l("No library number linked for this library"),
        _l("This card has no customer number of this library linked yet."),
        _l("If the citizen has a library card, you can link it now (their PIN is needed)."),
    ),
    "expired": Words(
        _l("Certificate expired"),
        _l("The card's user-authentication certificate has expired."),
        _l("Refer the citizen to their municipal office to renew it."),
    ),
    "revoked": Words(
        _l("Certificate revoked (lost card?)"),
        _l("The card's certificate is revoked: the card may have been reported lost."),
        _l("Do not accept this card; refer the citizen to their municipal office."),
    ),
    "pin_locked": Words(
        _l("PIN locked"),
        _l("The card's user-authentication PIN is locked."),
        _l("The citizen can have it reset at their municipal office."),
    ),
    "bridge_offline": Words(
        _l("Card reader offline"),
        _l("This counter's bridge (the program on the PC with the card reader) is not connected."),
        _l(
            "Check that the PC is on, the bridge is running and the network works: this page "
            "notices by itself when the bridge is back."
        ),
    ),
    "bridge_unpaired": Words(
        _l("No card reader paired"),
        _l(
            "This counter's bridge was revoked, or was never paired: it cannot connect again "
            "by itself."
        ),
        _l(
            "Ask your administrator to make a pairing code on the Terminals page and pair the "
            "bridge again."
        ),
    ),
    "reader_missing": Words(
        _l("No card reader found"),
        _l("The bridge is running but sees no card reader."),
        _l("Check that the card reader is plugged into the counter's PC."),
    ),
    "no_card": Words(
        _l("No card"),
        _l("There is no card on the card reader."),
        _l("Ask the citizen to place their My Number Card on the reader."),
    ),
    "card_removed": Words(
        _l("Card removed"),
        _l("The card left the reader before it was read."),
        _l("Ask the citizen to place the card again."),
    ),
    "pin_required": Words(
        _l("PIN required"),
        _l("This library asks for the PIN at lookup."),
        _l("Ask the card holder to type their PIN themselves."),
    ),
    "keyboard_unavailable": Words(
        _l("Could not type the number"),
        _l("The bridge could not type the number into the library system."),
        _l("Type the number shown here by hand."),
    ),
    "barcode_unavailable": Words(
        _l("No barcode for this number"),
        _l("This number cannot be drawn in the configured barcode symbology."),
        _l("Type the number by hand and ask an admin to check the barcode settings."),
    ),
    "unverified": Words(
        _l("Check the library card once"),
        _l(
            "The citizen linked this number themselves and it has not been checked: it is "
            "not typed or shown as a barcode until staff have seen the library card."
        ),
        _l(
            "Compare the patron's library card with this number, then press "
            '"Library card checked" (the card holder types their PIN).'
        ),
    ),
    "number_invalid": Words(
        _l("Number not valid"),
        _l("The number does not match this library's number format."),
        _l("Scan or type the library card number again."),
    ),
    "already_linked": Words(
        _l("Already linked"),
        _l("This MyKey ID already has a number of this library."),
        _l("To change it, the citizen unlinks it first."),
    ),
    "number_taken": Words(
        _l("Number verified for another MyKey ID"),
        _l("This customer number is already verified for another citizen's MyKey ID."),
        _l("Check the number and the library card; if it is theirs, call the library office."),
    ),
    "terms_not_accepted": Words(
        _l("Terms must be accepted"),
        _l("Linking needs the citizen's acceptance of this library's terms."),
        _l("Ask the citizen to read the terms and tick the box."),
    ),
}

IDENTITY: dict[str, LazyString] = {
    "not_registered": _l("This card is not registered to a MyKey ID yet."),
    "no_link": _l("No customer number is linked for this facility yet."),
    "number_invalid": _l("The number is not valid."),
    "already_linked": _l(
        "A number for this facility is already linked. Unlink it first to change it."
    ),
    "number_taken": _l(
        "This number is already verified for another MyKey ID. Please ask at the "
        "facility's counter."
    ),
    "terms_not_accepted": _l("Please accept the terms of use."),
    "terms_outdated": _l("The terms of use have changed. Please read and accept the new terms."),
    "reroll_limit": _l("This MyKey ID cannot be re-created any more times."),
    "reroll_closed": _l(
        "A MyKey ID can only be re-created right after creation, before any service is linked."
    ),
}

# The library system (SIP2) page of a provider admin: why a setting or a test failed.
SIP2: dict[str, LazyString] = {
    "sip2_not_a_library": _l("Only libraries connect a library system."),
    "sip2_no_connector": _l(
        "Choose a counter or kiosk of this library whose bridge is paired: the bridge on "
        "the library's network carries SIP2."
    ),
    "sip2_connector_changed": _l(
        "The connector's bridge has changed (paired again): type the passwords again, they "
        "are sealed to one bridge."
    ),
    "sip2_reseal": _l(
        "The address changed: type the passwords again, they are sealed to one address."
    ),
    "sip2_invalid": _l("A setting is not valid: check the fields."),
    "sip2_not_set_up": _l("This library has no library system connection yet."),
    "sip2_not_configured": _l("The bridge had no settings: try again."),
    "sip2_refused": _l("The bridge refused the request."),
    "sip2_seal": _l("The bridge could not open the sealed passwords: type them again."),
    "sip2_charset": _l("A value cannot be written in the library system's character set."),
    "sip2_throttled": _l("Too many wrong passwords for this number: try again later."),
    "sip2_unreachable": _l(
        "The bridge could not reach the library system (connection refused or no route): "
        "check the host, the port and that the system is running."
    ),
    "sip2_connect_timeout": _l("The library system did not answer the connection in time."),
    "sip2_tls": _l("The TLS handshake or the certificate check failed."),
    "sip2_login_refused": _l(
        "The library system refused the login (93): check the user and password."
    ),
    "sip2_timeout": _l("The library system did not answer in time."),
    "sip2_checksum": _l(
        "The checksums did not match after a resend: check the error detection setting."
    ),
    "sip2_bad_reply": _l("The library system's answer was not understood."),
    "bridge_offline": _l("The connector's bridge is offline: check its PC and network."),
    "timeout": _l("The connector's bridge did not answer in time."),
    "transport": _l("The connector's bridge could not be reached."),
}


def sip2_words(code: str) -> str:
    """One sentence for a SIP2 setting's or test's outcome."""
    return str(SIP2.get(code) or CITIZEN["internal"].explanation)


POINTS: dict[str, LazyString] = {
    "invalid_input": _l("The input is not valid."),
    "invalid_amount": _l("The amount must be a positive whole number within the limit."),
    "invalid_mykey_id": _l("The MyKey ID is malformed."),
    "invalid_reference": _l("The reference must be 1-64 printable ASCII characters."),
    "unknown_field": _l("The request has a field we do not know."),
    "missing_field": _l("A required field is missing."),
    "invalid_csv": _l("The CSV file has errors; no row was applied."),
    "unauthorized": _l("The credentials are missing or not valid."),
    "forbidden": _l("This operation is not allowed."),
    "unknown_municipality": _l("No such municipality."),
    "unknown_citizen": _l("No such MyKey ID."),
    "unknown_program": _l("No such grant program."),
    "unknown_merchant": _l("No such merchant."),
    "unknown_partner": _l("No such partner."),
    "unknown_transfer": _l("No such transfer."),
    "unknown_conversion": _l("No such conversion."),
    "unknown_cause": _l("No such cause or project."),
    "cause_closed": _l("This cause or project no longer takes donations."),
    "not_accepted": _l("The municipality does not accept this."),
    "inactive": _l("This is not active."),
    "not_running": _l("The program does not pay on this date (before its start or after its end)."),
    "invalid_code": _l("A code is 1 to 32 characters: capital letters A-Z, digits, - or _."),
    "duplicate_code": _l("This code is already used; choose another one."),
    "invalid_dates": _l("The end date must be on or after the start date."),
    "caps_only_raised": _l(
        "Per-citizen caps can only be raised once a program exists: lowering, adding or"
        " removing one would not match what was already paid."
    ),
    "invalid_bonus_program": _l(
        "A bonus needs a partner bonus program of this municipality: create one first."
    ),
    "unknown_till": _l("No such till."),
    "unknown_staff": _l("No such staff account."),
    "platform_partner": _l(
        "This partner is managed by the platform: its API keys are not issued here."
    ),
    "insufficient_points": _l("Not enough points."),
    "budget_exhausted": _l("The program's budget would be exceeded."),
    "cap_reached": _l("The per-citizen cap of the program is reached."),
    "below_minimum_unit": _l("The amount must be a positive multiple of the minimum unit."),
    "refund_window_closed": _l("The refund window for this payment has closed."),
    "refund_exceeds_spent": _l("The refund would exceed what was spent."),
    "not_reversible": _l("This transfer cannot be reversed."),
    "idempotency_conflict": _l("This idempotency key was already used with a different request."),
    "already_resolved": _l("The held transfer was already posted or voided."),
    "too_many_keys": _l("At most two API keys may be active; revoke one first."),
    "busy": _l("Busy; retry with the same key."),
    "unknown_checkout": _l("No such checkout."),
    "checkout_expired": _l("This checkout has expired: start again from the shop."),
    "checkout_cancelled": _l("This checkout was cancelled: start again from the shop."),
    "checkout_paid": _l("This checkout is already paid."),
    "checkout_not_paid": _l("This checkout is not paid: there is nothing to refund."),
    "invalid_return_url": _l(
        "The return URL must be an absolute URL on one of the shop's registered origins."
    ),
    "invalid_origin": _l(
        "An origin is https://host or https://host:port, with no path (one per line)."
    ),
    "not_a_shop": _l("Only a merchant of the online local goods category has a checkout."),
}

NUMBERS: dict[str, LazyString] = {
    "empty": _l("Please enter the number."),
    "too_short": _l("The number is too short."),
    "too_long": _l("The number is too long."),
    "bad_characters": _l("The number contains characters that are not allowed."),
    "bad_check": _l("The number is not valid. Please check the number on your card again."),
}

# Codes of the card flow API itself, beyond the card's outcomes.
CITIZEN.update(
    {
        "pin_retap": Words(
            _l("One try left"),
            _l(
                "A wrong PIN now would lock your card. To protect it, the last try can only "
                "be used after the card has been put on the reader again."
            ),
            _l("Take your card off the reader and tap it again to try once more."),
        ),
        "out_of_order": Words(
            _l("This step cannot be taken now"),
            _l("The procedure has moved on, or this step does not belong to it."),
            _l("Please start over."),
        ),
        "cancelled": Words(
            _l("Stopped"),
            _l("The procedure was stopped."),
            _l("Place your card to start again."),
        ),
        "wrong_terminal": Words(
            _l("Not available on this terminal"),
            _l("This terminal is not set up for this step, or it is no longer yours to use."),
            _l("Open the page again from the menu."),
        ),
        "no_terminal": Words(
            _l("No terminal is open in this tab"),
            _l("The terminal was closed, or your sign-in ended."),
            _l("Sign in and open the terminal again."),
        ),
        "unknown_provider": Words(_l("No such facility"), _l("Please choose a facility again.")),
        "unknown_place": Words(_l("No such place"), _l("Please choose the prefecture again.")),
        "internal": Words(
            _l("Something went wrong"),
            _l("The step could not be completed."),
            _l("Please try again. If it continues, please ask a staff member."),
        ),
    }
)
# "I have a new card": the two-card renewal step (webapp/kiosk/renew.py).
CITIZEN.update(
    {
        "same_card": Words(
            _l("This is the card you just used"),
            _l(
                "To move your MyKey ID, the old card and the new card are needed, one "
                "after the other."
            ),
            _l("Take this card off the reader and place your NEW card."),
        ),
        "old_card_revoked": Words(
            _l("This card cannot move your MyKey ID"),
            _l(
                "Its certificate was cancelled because the card was reported lost, or for "
                "another reason than a renewal. Only a renewed card's old card can be used here."
            ),
            _l(
                "Use your new card: once the municipality's records reach us, it opens your "
                "MyKey ID with your links and points. If it does not, please ask a staff member."
            ),
        ),
        "revoked_renewed": Words(
            _l("This card has been renewed"),
            _l(
                "Its certificate was replaced by the one on your new card, so it is no longer used."
            ),
            _l(
                'Use your new card. If it does not open your MyKey ID yet, choose "I have a new '
                'card" and place the old card, then the new one.'
            ),
        ),
        "renew_nothing_to_move": Words(
            _l("Nothing to move"),
            _l(
                "This card opens no MyKey ID here: it was never used here, or your MyKey ID "
                "has already moved to your new card."
            ),
            _l("Place your new card on the reader to use it."),
        ),
        "renew_new_card_in_use": Words(
            _l("Your new card already has a MyKey ID"),
            _l(
                "The new card opens another MyKey ID that already holds linked cards or "
                "points, so the two cannot be joined here. Nothing was changed."
            ),
            _l("Please ask a staff member: they can move them for you."),
        ),
    }
)
CITIZEN["unknown_purpose"] = CITIZEN["unknown_step"] = CITIZEN["out_of_order"]

STAFF.update(
    {
        "service_unavailable": Words(
            _l("Temporarily unavailable"),
            _l(
                "A temporary problem on the platform stops this step. The card and the PIN "
                "are not the cause."
            ),
            _l("Try again in a moment. If it continues, tell your administrator."),
        ),
        "internal": Words(
            _l("Something went wrong"),
            _l("The step could not be completed."),
            _l("Try again. If it continues, tell your administrator."),
        ),
        "pin_retap": Words(
            _l("One PIN try left"),
            _l(
                "To protect the card, the reader accepts the last try only after the card "
                "has been taken off and tapped again."
            ),
            _l(
                "Ask the card holder to take the card off the reader and tap it again, "
                "or to stop here."
            ),
        ),
    }
)
STAFF["terms_outdated"] = STAFF["terms_not_accepted"]

# At home: the citizen alone at their own computer, with their own bridge and reader
# (nobody to ask; what to do is theirs).
HOME: dict[str, Words] = {
    "bridge_offline": Words(
        _l("Your card reader is not connected"),
        _l("The Ichimai bridge on this computer is not connected to this site."),
        _l(
            "Start the bridge on this computer and check the network: this page notices by "
            "itself when it is back."
        ),
    ),
    "bridge_unpaired": Words(
        _l("The link to your card reader has ended"),
        _l("The bridge on this computer is no longer paired with this site."),
        _l("Reload this page and pair the bridge again with a new code."),
    ),
    "reader_missing": Words(
        _l("No card reader found"),
        _l("The bridge is running but sees no card reader."),
        _l("Plug the card reader into this computer."),
    ),
    "service_unavailable": Words(
        CITIZEN["service_unavailable"].title,
        CITIZEN["service_unavailable"].explanation,
        _l("Please try again in a while."),
    ),
    "internal": Words(
        CITIZEN["internal"].title,
        CITIZEN["internal"].explanation,
        _l("Please try again in a while."),
    ),
    "no_terminal": Words(
        _l("Your card reader is no longer linked to this browser"),
        _l("The link expired, or it was ended."),
        _l("Reload this page to set up your card reader again."),
    ),
}

# At a shop's till: the shop's staff, with the customer beside them.
TILL: dict[str, Words] = {
    "bridge_offline": Words(
        _l("Card reader offline"),
        _l(
            "This till's bridge (the program on the computer with the card reader) is not "
            "connected."
        ),
        _l(
            "Check that the till's computer is on and the bridge is running. If it stays "
            "offline, ask your administrator."
        ),
    ),
    "bridge_unpaired": Words(
        _l("No card reader paired"),
        _l(
            "This till's bridge was revoked, or was never paired: it cannot connect again by "
            "itself."
        ),
        _l("Ask your administrator to pair this till's bridge again."),
    ),
    "reader_missing": Words(
        _l("No card reader found"),
        _l("The bridge is running but sees no card reader."),
        _l("Check that the card reader is plugged into the till's computer."),
    ),
    "not_registered": Words(
        _l("This card has no MyKey ID yet"),
        _l("This card is not registered to a MyKey ID, so it has no points."),
        _l("The customer can register at a kiosk or at home."),
    ),
    "service_unavailable": STAFF["service_unavailable"],
    "internal": STAFF["internal"],
}

# Whose words a terminal's tab shows, by the terminal's kind (a kiosk: the citizen's).
AUDIENCES: dict[str, dict[str, Words]] = {"counter": STAFF, "home": HOME, "merchant": TILL}

TONES: dict[str, Tone] = {
    "not_registered": Tone("info", "?"),
    "no_link": Tone("warn", "+"),
    "expired": Tone("error", "⌛"),
    "not_yet_valid": Tone("error", "⌛"),
    "revoked": Tone("error", "⛔"),
    "old_card_revoked": Tone("error", "⛔"),
    "same_card": Tone("warn", "↩"),
    "pin_locked": Tone("error", "🔒"),
    "pin_retap": Tone("warn", "↻"),
    "bridge_offline": Tone("offline", "⚡"),
    "bridge_unpaired": Tone("offline", "⚡"),
    "reader_missing": Tone("offline", "⚡"),
    "card_removed": Tone("warn", "↩"),
    "wrong_pin": Tone("warn", "!"),
    "pin_last_try": Tone("warn", "!"),
    "keyboard_unavailable": Tone("warn", "⌨"),
    "unverified": Tone("warn", "?"),
}
DEFAULT_TONE = Tone("error", "!")


def words(code: str, *, staff: bool = False, audience: str | None = None) -> Words:
    """The words for `code`: for the counter's staff (`staff`), or for the reader of a
    terminal of kind `audience` (home, till) where theirs differ; else the citizen's."""
    own = STAFF if staff else AUDIENCES.get(audience or "", {})
    if code in own:
        return own[code]
    if code in CITIZEN:
        return CITIZEN[code]
    simple = IDENTITY.get(code) or POINTS.get(code)
    if simple is not None:
        return Words(simple, "")
    return CITIZEN["internal"]


def number_reason(reason: str) -> LazyString | None:
    """Why a customer number was refused (providers.numbers.Reason), in words."""
    return NUMBERS.get(reason)


def text(code: str, locale: str) -> str:
    """One sentence for `code` in `locale` (APIs that answer in both languages)."""
    with force_locale(locale):
        w = words(code)
        return str(w.explanation) or str(w.title)


def error_body(
    code: str,
    locale: str | None = None,
    *,
    staff: bool = False,
    audience: str | None = None,
    final: bool | None = None,
    tries_left: int | None = None,
    explanation: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The one JSON error body of the terminal APIs, worded for the request's language
    (and for its reader: `staff` at the counter, or the terminal kind's `audience`)."""
    w = words(code, staff=staff, audience=audience)
    if locale is None:
        return _body(code, w, final, tries_left, explanation, extra)
    with force_locale(locale):
        return _body(code, w, final, tries_left, explanation, extra)


def _body(
    code: str,
    w: Words,
    final: bool | None,
    tries_left: int | None,
    explanation: str | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    tone = TONES.get(code, DEFAULT_TONE)
    body: dict[str, Any] = {
        "code": code,
        "title": str(w.title),
        "message": explanation or str(w.explanation),
        "action": str(w.action),
        "final": bool(final),
        "tone": tone.name,
        "icon": tone.icon,
    }
    if tries_left is not None:
        body["tries_left"] = tries_left
    for key, value in extra.items():
        body.setdefault(key, value)
    return body
