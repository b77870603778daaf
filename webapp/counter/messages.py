"""What the librarian reads at the counter, per outcome: title, explanation, what to do.

Staff-facing words for the outcomes that matter at a counter; every other code falls
back to the card flow's own (citizen-facing, also fine for staff). Each outcome also has
a tone (the colour and icon of the status line) so that states differ at a glance, not
by colour alone: the icon and the title differ too.
"""

from __future__ import annotations

from typing import NamedTuple

from ..cardflow.messages import Message, message_for


class Tone(NamedTuple):
    """CSS modifier and icon of a status line."""

    name: str  # ok | info | warn | error | offline
    icon: str


TONES: dict[str, Tone] = {
    "not_registered": Tone("info", "?"),
    "no_link": Tone("warn", "+"),
    "expired": Tone("error", "⌛"),
    "not_yet_valid": Tone("error", "⌛"),
    "revoked": Tone("error", "⛔"),
    "pin_locked": Tone("error", "🔒"),
    "bridge_offline": Tone("offline", "⚡"),
    "reader_missing": Tone("offline", "⚡"),
    "card_removed": Tone("warn", "↩"),
    "wrong_pin": Tone("warn", "!"),
    "pin_last_try": Tone("warn", "!"),
    "keyboard_unavailable": Tone("warn", "⌨"),
}
DEFAULT_TONE = Tone("error", "!")

_JA: dict[str, Message] = {
    "not_registered": Message(
        "マイキーIDが未登録のカードです",
        "このカードはまだマイキーIDに登録されていません。",
        "市民の方は、キオスク端末またはご自宅で登録できます。",
    ),
    "no_link": Message(
        "この図書館の利用者番号が未登録です",
        "このカードには、この図書館の利用者番号がまだ登録されていません。",
        "利用者カードをお持ちなら、職員が番号を読み取って登録できます（本人の暗証番号が必要）。",
    ),
    "expired": Message(
        "電子証明書の有効期限切れ",
        "このカードの利用者証明用電子証明書は有効期限が切れています。",
        "市区町村の窓口で電子証明書の更新をご案内ください。",
    ),
    "revoked": Message(
        "失効した電子証明書（紛失届など）",
        "このカードの電子証明書は失効しています。紛失届の出たカードの可能性があります。",
        "このカードでは受け付けられません。市区町村の窓口をご案内ください。",
    ),
    "pin_locked": Message(
        "暗証番号がロックされています",
        "このカードの利用者証明用暗証番号はロックされています。",
        "市区町村の窓口で再設定できることをご案内ください。",
    ),
    "bridge_offline": Message(
        "カードリーダーと接続されていません",
        "この窓口端末のブリッジ（カードリーダー側）と通信できません。",
        "ブリッジのパソコンとネットワークを確認してください。つながると自動で戻ります。",
    ),
    "card_removed": Message(
        "カードが離れました",
        "読み取りの途中でカードがリーダーから離れました。",
        "カードをもう一度置いていただいてください。",
    ),
    "pin_required": Message(
        "暗証番号が必要です",
        "この図書館では、利用者番号の照会に暗証番号が必要です。",
        "カードの持ち主ご本人に、暗証番号を入力していただいてください。",
    ),
    "keyboard_unavailable": Message(
        "自動入力できませんでした",
        "ブリッジが図書館システムに番号を入力できませんでした。",
        "表示された番号を手で入力してください。",
    ),
    "barcode_unavailable": Message(
        "バーコードにできない番号です",
        "この番号は設定されたバーコードの種類では表せません。",
        "表示された番号を手で入力し、バーコード設定を管理者に確認してください。",
    ),
    "number_invalid": Message(
        "番号が正しくありません",
        "利用者番号がこの図書館の番号の形式に合いません。",
        "利用者カードの番号をもう一度読み取るか、入力し直してください。",
    ),
    "already_linked": Message(
        "すでに登録済みです",
        "このマイキーIDには、この図書館の番号がすでに登録されています。",
        "変更するには、市民の方が登録を解除してから登録し直します。",
    ),
    "number_taken": Message(
        "別のマイキーIDに登録済みの番号です",
        "この利用者番号は、別のマイキーIDに登録されています。",
        "番号と利用者カードを確認してください。",
    ),
    "terms_not_accepted": Message(
        "利用規約への同意が必要です",
        "登録には、この図書館の利用規約への同意が必要です。",
        "市民の方に利用規約をお読みいただき、同意の欄にチェックしてください。",
    ),
}

_EN: dict[str, Message] = {
    "not_registered": Message(
        "This card has no MyKey ID yet",
        "This card is not registered to a MyKey ID.",
        "The citizen can register at the kiosk or at home.",
    ),
    "no_link": Message(
        "No library number linked for this library",
        "This card has no customer number of this library linked yet.",
        "If the citizen has a library card, you can link it now (their PIN is needed).",
    ),
    "expired": Message(
        "Certificate expired",
        "The card's user-authentication certificate has expired.",
        "Refer the citizen to their municipal office to renew it.",
    ),
    "revoked": Message(
        "Certificate revoked (lost card?)",
        "The card's certificate is revoked: the card may have been reported lost.",
        "Do not accept this card; refer the citizen to their municipal office.",
    ),
    "pin_locked": Message(
        "PIN locked",
        "The card's user-authentication PIN is locked.",
        "The citizen can have it reset at their municipal office.",
    ),
    "bridge_offline": Message(
        "Card reader offline",
        "This counter's bridge (the card reader side) cannot be reached.",
        "Check the bridge PC and the network; the tab comes back by itself.",
    ),
    "card_removed": Message(
        "Card removed",
        "The card left the reader before it was read.",
        "Ask the citizen to place the card again.",
    ),
    "pin_required": Message(
        "PIN required",
        "This library asks for the PIN at lookup.",
        "Ask the card holder to type their PIN themselves.",
    ),
    "keyboard_unavailable": Message(
        "Could not type the number",
        "The bridge could not type the number into the library system.",
        "Type the number shown here by hand.",
    ),
    "barcode_unavailable": Message(
        "No barcode for this number",
        "This number cannot be drawn in the configured barcode symbology.",
        "Type the number by hand and ask an admin to check the barcode settings.",
    ),
    "number_invalid": Message(
        "Number not valid",
        "The number does not match this library's number format.",
        "Scan or type the library card number again.",
    ),
    "already_linked": Message(
        "Already linked",
        "This MyKey ID already has a number of this library.",
        "To change it, the citizen unlinks it first.",
    ),
    "number_taken": Message(
        "Number linked to another MyKey ID",
        "This customer number is linked to another MyKey ID.",
        "Check the number and the library card.",
    ),
    "terms_not_accepted": Message(
        "Terms must be accepted",
        "Linking needs the citizen's acceptance of this library's terms.",
        "Ask the citizen to read the terms and tick the box.",
    ),
}


def counter_message(code: str, locale: str) -> Message:
    """Title, explanation and action for the librarian, in `locale` ('ja' or 'en')."""
    table = _EN if str(locale).startswith("en") else _JA
    if code in table:
        return table[code]
    if code == "terms_outdated":
        return table["terms_not_accepted"]
    return message_for(code, locale)


def tone_for(code: str) -> Tone:
    """The status line's tone for an outcome."""
    return TONES.get(code, DEFAULT_TONE)
