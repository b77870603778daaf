"""The words of `ichimai-bridge status`, in Japanese and English, keyed by finding code.

Written for the person at the counter PC: what is wrong, then what to do about it.
"""

from __future__ import annotations

import locale
import os
import sys

PAIR = "ichimai-bridge pair {platform} CODE"

TEXTS: dict[str, tuple[str, str]] = {
    "paired": (
        "Paired with {platform} as bridge {bridge} (terminal #{terminal}).",
        "{platform} とペアリング済みです(ブリッジ {bridge}、端末 #{terminal})。",
    ),
    "not_paired": (
        "This bridge is not paired yet. Ask your administrator for a one-time pairing code,"
        " then run: ichimai-bridge pair https://<platform> CODE",
        "このブリッジはまだペアリングされていません。管理者にワンタイムのペアリングコードを"
        "発行してもらい、次を実行してください: ichimai-bridge pair https://<platform> CODE",
    ),
    "state_damaged": (
        "The bridge's files in {home} cannot be used ({detail}). Pair it again with a new"
        " code from your administrator.",
        "{home} のブリッジのファイルが使えません({detail})。管理者から新しいコードを"
        "もらって、もう一度ペアリングしてください。",
    ),
    "pcsc_missing": (
        "The smart-card library is missing or broken ({detail}). Reinstall the bridge:"
        " pipx reinstall ichimai-bridge",
        "ICカードのライブラリがないか壊れています({detail})。ブリッジを入れ直してください:"
        " pipx reinstall ichimai-bridge",
    ),
    "no_service_linux": (
        "The smart-card service (pcscd) is not running. Install and start it:"
        " sudo apt install pcscd libccid && sudo systemctl enable --now pcscd.socket",
        "ICカードのサービス(pcscd)が動いていません。入れて起動してください:"
        " sudo apt install pcscd libccid && sudo systemctl enable --now pcscd.socket",
    ),
    "no_service_windows": (
        "The Windows Smart Card service is not running. Windows starts it when a card"
        " reader is plugged in: plug the reader in (try another USB port). If it is plugged"
        " in, open services.msc, find 'Smart Card' and press Start.",
        "Windows のスマートカードサービスが動いていません。カードリーダーをつなぐと Windows"
        " が起動します。リーダーをつないでください(別の USB ポートも試してください)。つないで"
        "あるときは services.msc を開き「Smart Card」を開始してください。",
    ),
    "no_service_macos": (
        "macOS's smart-card service does not answer. Unplug the card reader and plug it in"
        " again; if that does not help, restart the Mac.",
        "macOS のスマートカードサービスが応答しません。カードリーダーを抜いて差し直して"
        "ください。直らなければ Mac を再起動してください。",
    ),
    "pcsc_error": (
        "The smart-card service answered with an error ({detail}). Unplug the reader and"
        " plug it in again; if that does not help, restart the PC.",
        "ICカードのサービスがエラーを返しました({detail})。リーダーを差し直してください。"
        "直らなければ PC を再起動してください。",
    ),
    "no_reader": (
        "No card reader is connected. Plug the reader's USB cable in (try another port);"
        " install the driver that came with the reader if it has one.",
        "カードリーダーがつながっていません。リーダーの USB ケーブルをつないでください"
        "(別のポートも試してください)。付属のドライバーがあれば入れてください。",
    ),
    "no_reader_linux": (
        "No card reader is connected. Plug the reader's USB cable in (try another port); most"
        " readers need the CCID driver: sudo apt install libccid",
        "カードリーダーがつながっていません。リーダーの USB ケーブルをつないでください"
        "(別のポートも試してください)。多くのリーダーは CCID ドライバーが必要です:"
        " sudo apt install libccid",
    ),
    "pcsc_ok": (
        "The smart-card service is running; {count} reader(s) connected.",
        "ICカードのサービスは動いています。リーダー {count} 台がつながっています。",
    ),
    "card_present": (
        "Reader '{reader}': a card is on it.",
        "リーダー「{reader}」: カードが置かれています。",
    ),
    "no_card": (
        "Reader '{reader}': no card. That is normal between citizens; to test, put a My"
        " Number Card on it and run this again.",
        "リーダー「{reader}」: カードがありません。利用者のいないときはこれで正常です。"
        "試すときはマイナンバーカードを置いて、もう一度実行してください。",
    ),
    "card_mute": (
        "Reader '{reader}': a card is there but does not answer. Lay the card flat on the"
        " reader's mark and keep other cards and metal away.",
        "リーダー「{reader}」: カードはありますが応答しません。カードをリーダーの印に平らに"
        "置き、ほかのカードや金属を離してください。",
    ),
    "platform_ok": (
        "The platform {platform} answers.",
        "プラットフォーム {platform} に接続できます。",
    ),
    "unreachable": (
        "Cannot reach the platform {platform} ({detail}). Check this PC's network"
        " connection. If other web sites open, the platform may be down or a firewall or"
        " proxy blocks it: tell your administrator.",
        "プラットフォーム {platform} に接続できません({detail})。この PC のネットワーク"
        "接続を確認してください。ほかのサイトが開けるなら、プラットフォームが止まっているか、"
        "ファイアウォールやプロキシが遮っています。管理者に連絡してください。",
    ),
    "tls_untrusted": (
        "The platform {platform} answers, but its certificate is not trusted ({detail})."
        " Tell your administrator; do not go on.",
        "プラットフォーム {platform} の証明書が信頼できません({detail})。管理者に"
        "連絡してください。このまま使わないでください。",
    ),
    "tls_clock": (
        "The platform's certificate looks expired or not yet valid: this PC's date and time"
        " are probably wrong. Set the clock right (turn on automatic time), then try again.",
        "プラットフォームの証明書が期限切れか、まだ有効でないように見えます。この PC の日付と"
        "時刻がずれている可能性があります。時刻を直して(自動設定をオンにして)からもう一度"
        "試してください。",
    ),
    "unknown_bridge": (
        "The platform {platform} does not know this bridge (it was deleted, or paired with"
        " another platform). Ask your administrator for a new pairing code, then run: " + PAIR,
        "プラットフォーム {platform} はこのブリッジを知りません(削除されたか、別の"
        "プラットフォームとペアリングされています)。管理者に新しいペアリングコードをもらい、"
        "次を実行してください: " + PAIR,
    ),
    "revoked": (
        "This bridge was revoked on the platform (an administrator revoked it, or paired"
        " another bridge for this terminal). It will not connect again. Ask your"
        " administrator for a new pairing code, then run: " + PAIR,
        "このブリッジはプラットフォームで無効にされています(管理者が無効にしたか、この端末に"
        "別のブリッジをペアリングしました)。もう接続しません。管理者に新しいペアリング"
        "コードをもらい、次を実行してください: " + PAIR,
    ),
    "connected": (
        "The bridge is connected to the platform now.",
        "ブリッジはいまプラットフォームに接続しています。",
    ),
    "not_connected": (
        "The bridge is not connected to the platform. Start it: ichimai-bridge run (to start"
        " it at every log-in: ichimai-bridge install-autostart). If it is running, wait a"
        " minute and run this again.",
        "ブリッジがプラットフォームに接続していません。起動してください: ichimai-bridge run"
        "(ログインのたびに起動するには: ichimai-bridge install-autostart)。起動中なら"
        "1 分待ってからもう一度実行してください。",
    ),
    "no_check": (
        "The platform {platform} cannot tell whether this bridge is allowed (an older"
        " version). Ask your administrator whether it shows this bridge as online.",
        "プラットフォーム {platform} はこのブリッジの状態を答えられません(古い版です)。"
        "管理者にオンラインと表示されているか確認してもらってください。",
    ),
    "platform_error": (
        "The platform {platform} answered with an error (HTTP {status}). Try again in a few"
        " minutes; if it goes on, tell your administrator.",
        "プラットフォーム {platform} がエラーを返しました(HTTP {status})。数分後にもう一度"
        "試してください。続くときは管理者に連絡してください。",
    ),
    "clock_ok": (
        "This PC's clock agrees with the platform's.",
        "この PC の時計はプラットフォームと合っています。",
    ),
    "clock_ahead": (
        "This PC's clock is about {minutes} minute(s) ahead of the platform's. Turn on"
        " automatic time setting (Windows: Settings > Time & language > Date & time > Set"
        " time automatically; macOS: System Settings > General > Date & Time; Linux:"
        " sudo timedatectl set-ntp true).",
        "この PC の時計はプラットフォームより約 {minutes} 分進んでいます。時刻の自動設定を"
        "オンにしてください(Windows: 設定 > 時刻と言語 > 日付と時刻 > 時刻を自動的に設定する。"
        "macOS: システム設定 > 一般 > 日付と時刻。Linux: sudo timedatectl set-ntp true)。",
    ),
    "clock_behind": (
        "This PC's clock is about {minutes} minute(s) behind the platform's. Turn on"
        " automatic time setting (Windows: Settings > Time & language > Date & time > Set"
        " time automatically; macOS: System Settings > General > Date & Time; Linux:"
        " sudo timedatectl set-ntp true).",
        "この PC の時計はプラットフォームより約 {minutes} 分遅れています。時刻の自動設定を"
        "オンにしてください(Windows: 設定 > 時刻と言語 > 日付と時刻 > 時刻を自動的に設定する。"
        "macOS: システム設定 > 一般 > 日付と時刻。Linux: sudo timedatectl set-ntp true)。",
    ),
    "keyboard_ok": (
        "Keyboard output: {backend}; it can type the number into the library system.",
        "キーボード出力: {backend}。図書館システムに番号を入力できます。",
    ),
    "keyboard_unavailable": (
        "Keyboard output: none can type here ({detail}). The counter page still shows the"
        " number as digits and a barcode.",
        "キーボード出力: ここでは入力できません({detail})。カウンター画面には番号と"
        "バーコードが表示されます。",
    ),
    "keyboard_off": (
        "Keyboard output: turned off ({detail}).",
        "キーボード出力: オフです({detail})。",
    ),
    "all_well": ("Everything needed works.", "必要なものはすべて動いています。"),
    "problems": (
        "{count} problem(s) to fix: see the lines marked [!!].",
        "直すことが {count} 件あります。[!!] の行を見てください。",
    ),
}


def default_lang() -> str:
    """`ja` where the user's locale is Japanese, else `en`."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = os.environ.get(name)
        if value:
            return "ja" if value.lower().startswith("ja") else "en"
    if sys.platform == "win32":  # Windows keeps its language out of the environment
        found = locale.getlocale()[0] or ""
        return "ja" if found.lower().startswith(("ja", "japanese")) else "en"
    return "en"


def say(lang: str, code: str, **values: object) -> str:
    """The text for `code` in `lang` (`ja` or `en`), filled in."""
    english, japanese = TEXTS[code]
    return (japanese if lang == "ja" else english).format(**values)
