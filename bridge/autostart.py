"""`ichimai-bridge install-autostart`: start `ichimai-bridge run` at every log-in.

One file per system, written with the standard library's own writers, then the one
command that turns it on:

- Linux: a systemd user unit (~/.config/systemd/user/ichimai-bridge.service), enabled
  with `systemctl --user enable --now`. Restarted when it fails, but not after exit 2
  (not paired) or 3 (revoked): those need a person, not a loop.
- Windows: a Task Scheduler task (XML) that runs at this user's log-on, with pythonw
  (no console window), registered with `schtasks /Create /XML`.
- macOS: a launch agent (~/Library/LaunchAgents/jp.ichimai.bridge.plist, plistlib),
  loaded with `launchctl bootstrap gui/<uid>`; restarted when it exits with an error.

The command is the Python running now (`sys.executable -m bridge run`), so the task
keeps working whatever PATH the log-in session has. `--dry-run` prints the file and
the command and changes nothing.
"""

from __future__ import annotations

import getpass
import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

UNIT_NAME = "ichimai-bridge.service"
TASK_NAME = "Ichimai bridge"
AGENT_LABEL = "jp.ichimai.bridge"
TASK_NS = "http://schemas.microsoft.com/windows/2004/02/mit/task"


@dataclass(frozen=True, slots=True)
class Autostart:
    """What to write where, and the command that turns it on."""

    path: Path
    content: bytes
    enable: list[list[str]]  # run in turn: turn it on, and start it now
    how: str  # one line: what the system will do


def run_command(home: Path | None, python: str | None = None) -> list[str]:
    """The command that starts the bridge (this Python, this state directory)."""
    argv = [python or sys.executable, "-m", "bridge", "run"]
    return [*argv, "--home", str(home)] if home is not None else argv


def systemd_unit(command: list[str], user_home: Path) -> Autostart:
    """A systemd user unit for Linux."""
    unit = "\n".join(
        [
            "[Unit]",
            "Description=Ichimai bridge (card reader to platform)",
            "",
            "[Service]",
            f"ExecStart={shlex.join(command)}",
            "Restart=on-failure",
            "RestartSec=10",
            # 2: not paired, 3: revoked. A person must pair it again: do not loop.
            "RestartPreventExitStatus=2 3",
            "",
            "[Install]",
            "WantedBy=default.target",
            "",
        ]
    )
    path = user_home / ".config" / "systemd" / "user" / UNIT_NAME
    enable = [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", UNIT_NAME],
    ]
    return Autostart(path, unit.encode(), enable, "systemd user unit, started at log-in")


def windows_task(command: list[str], user_home: Path, user: str) -> Autostart:
    """A Task Scheduler task for Windows: at this user's log-on, no console window."""
    python = Path(command[0])
    windowless = python.with_name("pythonw.exe")
    program = str(windowless if windowless.exists() else python)
    ET.register_namespace("", TASK_NS)

    def node(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
        element = ET.SubElement(parent, f"{{{TASK_NS}}}{tag}")
        element.text = text
        return element

    task = ET.Element(f"{{{TASK_NS}}}Task", version="1.2")
    info = node(task, "RegistrationInfo")
    node(info, "Description", "Ichimai bridge (card reader to platform)")
    trigger = node(node(task, "Triggers"), "LogonTrigger")
    node(trigger, "Enabled", "true")
    node(trigger, "UserId", user)
    principal = node(node(task, "Principals"), "Principal", None)
    principal.set("id", "Author")
    node(principal, "UserId", user)
    node(principal, "LogonType", "InteractiveToken")
    node(principal, "RunLevel", "LeastPrivilege")
    settings = node(task, "Settings")
    node(settings, "MultipleInstancesPolicy", "IgnoreNew")
    node(settings, "DisallowStartIfOnBatteries", "false")
    node(settings, "StopIfGoingOnBatteries", "false")
    node(settings, "ExecutionTimeLimit", "PT0S")  # runs all day
    restart = node(settings, "RestartOnFailure")
    node(restart, "Interval", "PT1M")
    node(restart, "Count", "999")
    action = node(node(task, "Actions"), "Exec")
    action.set("Context", "Author")
    node(action, "Command", program)
    node(action, "Arguments", subprocess.list2cmdline(command[1:]))
    content = ET.tostring(task, encoding="utf-8", xml_declaration=True)
    path = user_home / "ichimai-bridge-task.xml"
    enable = [
        ["schtasks", "/Create", "/TN", TASK_NAME, "/XML", str(path), "/F"],
        ["schtasks", "/Run", "/TN", TASK_NAME],
    ]
    return Autostart(path, content, enable, "scheduled task, started at log-on")


def launch_agent(command: list[str], user_home: Path) -> Autostart:
    """A launch agent for macOS."""
    agent = {
        "Label": AGENT_LABEL,
        "ProgramArguments": command,
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 30,
        "StandardErrorPath": str(user_home / "Library" / "Logs" / "ichimai-bridge.log"),
    }
    path = user_home / "Library" / "LaunchAgents" / f"{AGENT_LABEL}.plist"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    enable = [["launchctl", "bootstrap", f"gui/{uid}", str(path)]]  # RunAtLoad: starts now
    return Autostart(path, plistlib.dumps(agent), enable, "launch agent, started at log-in")


def plan(
    home: Path | None, *, platform: str = sys.platform, user_home: Path | None = None
) -> Autostart:
    """The autostart for this system."""
    command = run_command(home)
    user_home = user_home or Path.home()
    if platform == "win32":
        domain = os.environ.get("USERDOMAIN")
        user = f"{domain}\\{getpass.getuser()}" if domain else getpass.getuser()
        return windows_task(command, user_home, user)
    if platform == "darwin":
        return launch_agent(command, user_home)
    return systemd_unit(command, user_home)


def _shown(argv: list[str]) -> str:
    return subprocess.list2cmdline(argv) if sys.platform == "win32" else shlex.join(argv)


def install(autostart: Autostart, *, dry_run: bool = False) -> tuple[int, str]:
    """Write the file and run the commands that turn it on; (exit code, what to tell)."""
    commands = "\n".join(_shown(argv) for argv in autostart.enable)
    if dry_run:
        text = autostart.content.decode()
        return 0, f"# {autostart.path} ({autostart.how})\n{text}\n# then:\n{commands}"
    autostart.path.parent.mkdir(parents=True, exist_ok=True)
    autostart.path.write_bytes(autostart.content)
    lines = [f"wrote {autostart.path} ({autostart.how})"]
    for argv in autostart.enable:
        if shutil.which(argv[0]) is None:
            lines.append(f"{argv[0]} is not here: turn it on yourself with:\n{commands}")
            return 1, "\n".join(lines)
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv
                argv, capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            done = subprocess.CompletedProcess(argv, 1, "", str(exc))
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip()[:300]
            lines.append(f"could not turn it on ({detail}); run it yourself:\n{commands}")
            if sys.platform == "win32":
                lines.append("if Windows says access is denied, use an administrator prompt")
            return 1, "\n".join(lines)
        lines.append(f"done: {_shown(argv)}")
    return 0, "\n".join(lines)
