"""What a citizen or a librarian reads for each outcome, in Japanese and English.

`message_for(code, locale)` gives (title, plain explanation, what to do). Plain words,
no jargon, no blame; every code of `FlowCode` has both languages (a test checks).
"""

from __future__ import annotations

from typing import NamedTuple

from .errors import CardFlowError, FlowCode


class Message(NamedTuple):
    """Title, plain explanation, and what to do next."""

    title: str
    explanation: str
    action: str


_JA: dict[FlowCode, Message] = {
    FlowCode.NO_CARD: Message(
        "カードがありません",
        "カードリーダーにカードが置かれていません。",
        "マイナンバーカードをカードリーダーに置いてください。",
    ),
    FlowCode.CARD_REMOVED: Message(
        "カードが離れました",
        "手続きの途中でカードがカードリーダーから離れたため、手続きを終了しました。",
        "もう一度カードを置いて、最初からやり直してください。",
    ),
    FlowCode.BRIDGE_OFFLINE: Message(
        "カードリーダーにつながっていません",
        "この端末のカードリーダーと通信できません。",
        "しばらく待ってからもう一度お試しください。続く場合は職員にお声がけください。",
    ),
    FlowCode.READER_MISSING: Message(
        "カードリーダーが見つかりません",
        "カードリーダーが接続されていないようです。",
        "職員にお声がけください。",
    ),
    FlowCode.TIMEOUT: Message(
        "応答がありません",
        "カードの読み取りに時間がかかりすぎました。",
        "カードを置き直して、もう一度お試しください。",
    ),
    FlowCode.NOT_MY_NUMBER_CARD: Message(
        "マイナンバーカードではありません",
        "置かれたカードはマイナンバーカードとして読み取れませんでした。",
        "マイナンバーカードを置いてください。",
    ),
    FlowCode.CARD_UNREADABLE: Message(
        "カードを読み取れません",
        "カードの読み取り中に問題が起きました。",
        "カードを置き直して、もう一度お試しください。",
    ),
    FlowCode.UNTRUSTED: Message(
        "このカードは使えません",
        "カードの電子証明書を確認できませんでした。",
        "お住まいの市区町村の窓口にご相談ください。",
    ),
    FlowCode.EXPIRED: Message(
        "電子証明書の有効期限が切れています",
        "カードの利用者証明用電子証明書の有効期限が過ぎています。",
        "お住まいの市区町村の窓口で電子証明書を更新してください。",
    ),
    FlowCode.NOT_YET_VALID: Message(
        "電子証明書がまだ使えません",
        "カードの電子証明書の有効期間がまだ始まっていません。",
        "お住まいの市区町村の窓口にご相談ください。",
    ),
    FlowCode.REVOKED: Message(
        "このカードの電子証明書は失効しています",
        "紛失届などにより、このカードの電子証明書は使えなくなっています。",
        "お住まいの市区町村の窓口にご相談ください。",
    ),
    FlowCode.CRL_UNAVAILABLE: Message(
        "今は確認できません",
        "電子証明書が有効かどうかを、今は確認できません。",
        "しばらく待ってからもう一度お試しください。",
    ),
    FlowCode.WRONG_PIN: Message(
        "暗証番号が違います",
        "入力した暗証番号が正しくありません。",
        "正しい4桁の暗証番号を入力してください。",
    ),
    FlowCode.PIN_LAST_TRY: Message(
        "あと1回でロックされます",
        "暗証番号をあと1回間違えると、カードがロックされます。",
        "暗証番号に自信がなければ、ここで中止してください。",
    ),
    FlowCode.PIN_LOCKED: Message(
        "暗証番号がロックされています",
        "暗証番号がロックされています。お住まいの市区町村の窓口で再設定できます。",
        "本人確認書類とカードを持って、市区町村の窓口へお越しください。",
    ),
    FlowCode.PIN_FORMAT: Message(
        "暗証番号は4桁の数字です",
        "利用者証明用の暗証番号は4桁の数字です。",
        "4桁の数字を入力してください。",
    ),
    FlowCode.AUTH_FAILED: Message(
        "本人確認ができませんでした",
        "カードによる本人確認がうまくいきませんでした。",
        "カードを置き直して、もう一度お試しください。",
    ),
    FlowCode.FLOW_EXPIRED: Message(
        "時間切れです",
        "時間がたったため、この手続きは無効になりました。",
        "最初からやり直してください。",
    ),
    FlowCode.NOT_REGISTERED: Message(
        "まだ登録されていません",
        "このカードはまだマイキーIDに登録されていません。",
        "キオスク端末で登録できます。職員にお声がけください。",
    ),
    FlowCode.NO_LINK: Message(
        "利用者番号が登録されていません",
        "この施設の利用者番号は、まだこのカードに登録されていません。",
        "キオスク端末で利用者番号を登録できます。",
    ),
    FlowCode.SESSION_ENDED: Message(
        "手続きを終了しました",
        "一定時間操作がなかったため、またはカードが離れたため、手続きを終了しました。",
        "続けるには、もう一度カードを置いてください。",
    ),
    FlowCode.BUSY: Message(
        "処理中です",
        "前の操作をまだ処理しています。",
        "少し待ってから、もう一度お試しください。",
    ),
    FlowCode.SERVICE_UNAVAILABLE: Message(
        "ただいま手続きができません",
        "システムの一時的な不具合のため、手続きを進められません。カードや暗証番号の問題ではありません。",
        "しばらく待ってからもう一度お試しください。続く場合は職員にお声がけください。",
    ),
}

_EN: dict[FlowCode, Message] = {
    FlowCode.NO_CARD: Message(
        "No card",
        "There is no card on the card reader.",
        "Please place your My Number Card on the reader.",
    ),
    FlowCode.CARD_REMOVED: Message(
        "The card was removed",
        "The card left the reader in the middle of the procedure, so it was ended.",
        "Place your card again and start over.",
    ),
    FlowCode.BRIDGE_OFFLINE: Message(
        "The card reader is not connected",
        "This terminal cannot reach its card reader right now.",
        "Please wait a moment and try again. If it continues, please ask a staff member.",
    ),
    FlowCode.READER_MISSING: Message(
        "No card reader found",
        "The card reader does not seem to be connected.",
        "Please ask a staff member.",
    ),
    FlowCode.TIMEOUT: Message(
        "No answer",
        "Reading the card took too long.",
        "Place the card again and try once more.",
    ),
    FlowCode.NOT_MY_NUMBER_CARD: Message(
        "This is not a My Number Card",
        "The card on the reader could not be read as a My Number Card.",
        "Please place your My Number Card.",
    ),
    FlowCode.CARD_UNREADABLE: Message(
        "The card could not be read",
        "Something went wrong while reading the card.",
        "Place the card again and try once more.",
    ),
    FlowCode.UNTRUSTED: Message(
        "This card cannot be used",
        "The card's electronic certificate could not be confirmed.",
        "Please ask at your municipal office.",
    ),
    FlowCode.EXPIRED: Message(
        "The certificate has expired",
        "The card's user-authentication certificate is past its expiry date.",
        "Please renew the certificate at your municipal office.",
    ),
    FlowCode.NOT_YET_VALID: Message(
        "The certificate is not valid yet",
        "The card's certificate has not started its validity period.",
        "Please ask at your municipal office.",
    ),
    FlowCode.REVOKED: Message(
        "The card's certificate is revoked",
        "The certificate can no longer be used, for example because the card was reported lost.",
        "Please ask at your municipal office.",
    ),
    FlowCode.CRL_UNAVAILABLE: Message(
        "Cannot check right now",
        "We cannot check right now whether the certificate is still valid.",
        "Please wait a moment and try again.",
    ),
    FlowCode.WRONG_PIN: Message(
        "Wrong PIN",
        "The PIN you entered is not correct.",
        "Please enter your correct 4-digit PIN.",
    ),
    FlowCode.PIN_LAST_TRY: Message(
        "One try left before the card locks",
        "If the PIN is wrong once more, the card will be locked.",
        "If you are not sure of your PIN, please stop here.",
    ),
    FlowCode.PIN_LOCKED: Message(
        "The PIN is locked",
        "The PIN is locked. It can be reset at your municipal office.",
        "Please bring the card and an identity document to your municipal office.",
    ),
    FlowCode.PIN_FORMAT: Message(
        "The PIN is 4 digits",
        "The user-authentication PIN is 4 digits.",
        "Please enter 4 digits.",
    ),
    FlowCode.AUTH_FAILED: Message(
        "Identity could not be confirmed",
        "Confirming your identity with the card did not succeed.",
        "Place the card again and try once more.",
    ),
    FlowCode.FLOW_EXPIRED: Message(
        "Time is up",
        "Too much time has passed, so this step is no longer valid.",
        "Please start over.",
    ),
    FlowCode.NOT_REGISTERED: Message(
        "Not registered yet",
        "This card is not registered to a MyKey ID yet.",
        "You can register at a kiosk. Please ask a staff member.",
    ),
    FlowCode.NO_LINK: Message(
        "No customer number linked",
        "No customer number of this facility is linked to this card yet.",
        "You can link your customer number at a kiosk.",
    ),
    FlowCode.SESSION_ENDED: Message(
        "The session has ended",
        "It ended because there was no activity for a while, or the card was removed.",
        "To continue, place your card again.",
    ),
    FlowCode.BUSY: Message(
        "Working",
        "The previous step is still being processed.",
        "Please wait a moment and try again.",
    ),
    FlowCode.SERVICE_UNAVAILABLE: Message(
        "Temporarily unavailable",
        "A temporary problem on our side stops this step. Your card and PIN are not the cause.",
        "Please wait a moment and try again. If it continues, please ask a staff member.",
    ),
}


def message_for(code: FlowCode | str, locale: str) -> Message:
    """(title, explanation, action) for a flow code in `locale` ('ja' default, or 'en')."""
    try:
        flow = FlowCode(code)
    except ValueError:
        flow = FlowCode.CARD_UNREADABLE
    table = _EN if str(locale).startswith("en") else _JA
    return table[flow]


def error_body(exc: CardFlowError, locale: str) -> dict[str, object]:
    """The JSON body a terminal tab gets for a card-flow error, in `locale`'s words."""
    title, explanation, action = message_for(exc.code, locale)
    return {
        "code": exc.code.value,
        "title": title,
        "explanation": explanation,
        "action": action,
        "tries_left": exc.tries_left,
        "final": exc.final,
    }
