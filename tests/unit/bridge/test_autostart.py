"""`ichimai-bridge install-autostart`: the file each system starts the bridge from."""

from __future__ import annotations

import plistlib
from pathlib import Path
from xml.etree import ElementTree as ET

from bridge.autostart import TASK_NS, install, launch_agent, plan, systemd_unit, windows_task

COMMAND = ["/opt/py/bin/python", "-m", "bridge", "run"]


def test_systemd_user_unit(tmp_path: Path) -> None:
    made = systemd_unit(COMMAND, tmp_path)
    unit = made.content.decode()
    assert made.path == tmp_path / ".config/systemd/user/ichimai-bridge.service"
    assert "ExecStart=/opt/py/bin/python -m bridge run\n" in unit
    assert "RestartPreventExitStatus=2 3" in unit and "WantedBy=default.target" in unit
    assert made.enable[-1] == ["systemctl", "--user", "enable", "--now", "ichimai-bridge.service"]


def test_windows_task_runs_at_log_on_without_a_console(tmp_path: Path) -> None:
    python = tmp_path / "python.exe"
    (tmp_path / "pythonw.exe").touch()
    made = windows_task([str(python), "-m", "bridge", "run"], tmp_path, "CITY\\librarian")
    task = ET.fromstring(made.content)  # noqa: S314 - our own output
    ns = {"t": TASK_NS}
    assert task.findtext("t:Triggers/t:LogonTrigger/t:UserId", namespaces=ns) == "CITY\\librarian"
    assert task.findtext("t:Actions/t:Exec/t:Command", namespaces=ns) == str(
        tmp_path / "pythonw.exe"
    )
    assert task.findtext("t:Actions/t:Exec/t:Arguments", namespaces=ns) == "-m bridge run"
    assert task.findtext("t:Principals/t:Principal/t:RunLevel", namespaces=ns) == "LeastPrivilege"
    assert made.enable[0][:2] == ["schtasks", "/Create"] and made.enable[1][1] == "/Run"


def test_macos_launch_agent(tmp_path: Path) -> None:
    made = launch_agent(COMMAND, tmp_path)
    agent = plistlib.loads(made.content)
    assert agent["ProgramArguments"] == COMMAND and agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    assert made.path == tmp_path / "Library/LaunchAgents/jp.ichimai.bridge.plist"


def test_plan_keeps_a_chosen_home_and_a_dry_run_writes_nothing(tmp_path: Path) -> None:
    made = plan(tmp_path / "state", platform="linux", user_home=tmp_path)
    assert f"--home {tmp_path / 'state'}" in made.content.decode()
    code, text = install(made, dry_run=True)
    assert code == 0 and "systemctl --user enable --now" in text
    assert not made.path.exists()
