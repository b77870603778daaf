"""The officer's causes and crowdfunding projects (/points/causes), CSRF on: create and
change them with their audit entries, refusals that change nothing, another
municipality's cause not found, other roles refused, no CSRF token."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from tests.functional.test_points_admin import World, log, sign_in, world
from webapp import db
from webapp.points.models import Cause

__all__ = ["world"]

LATER = (date.today() + timedelta(days=30)).isoformat()
PROJECT = {
    "code": "hall",
    "name": "町民ホールの改修",
    "description": "ホールの椅子を新しくします。",
    "kind": "project",
    "goal_points": "100000",
    "ends_on": LATER,
    "miss_policy": "return",
    "fresh_days": "30",
}
CAUSE = {**PROJECT, "code": "relief", "name": "災害復興支援", "kind": "cause", "goal_points": ""}
CAUSE["ends_on"] = ""


def _causes(world: World) -> list[Cause]:
    with world.app.app_context(), db.new_session() as s:
        return list(s.scalars(select(Cause).order_by(Cause.id)))


def test_create_and_change_causes_and_projects(world: World) -> None:
    client, csrf = sign_in(world, "officer-a")
    assert client.get("/points/causes").status_code == 200
    made = client.post("/points/causes", data={**PROJECT, "csrf_token": csrf})
    assert made.status_code == 302, made.get_data(as_text=True)[:2000]
    relief = client.post("/points/causes", data={**CAUSE, "csrf_token": csrf})
    assert relief.status_code == 302
    project, cause = _causes(world)
    assert (project.code, project.kind, project.goal_points) == ("HALL", "project", 100_000)
    assert project.ends_at is not None and project.municipality_id == world.a
    assert (cause.kind, cause.goal_points, cause.ends_at) == ("cause", None, None)
    assert made.headers["Location"].startswith(f"/points/causes/{project.id}")
    page = client.get(f"/points/causes/{project.id}?lang=en").get_data(as_text=True)
    assert "町民ホールの改修" in page and "100,000" in page
    listed = client.get("/points/causes?lang=ja").get_data(as_text=True)
    assert "災害復興支援" in listed and "寄付受付中" in listed

    changed = client.post(
        f"/points/causes/{project.id}",
        data={
            "name": "町民ホールの改修工事",
            "description": "",
            "miss_policy": "keep",
            "fresh_days": "60",
            "csrf_token": csrf,
        },  # "open" unchecked: closed
    )
    assert changed.status_code == 302
    [after, _] = _causes(world)
    assert (after.name, after.status, after.miss_policy, after.fresh_days) == (
        "町民ホールの改修工事", "closed", "keep", 60,
    )  # fmt: skip
    actions = [(e.action, e.changes) for e in log(world, world.a)]
    assert [a for a, _ in actions] == ["cause.create", "cause.create", "cause.update"]
    assert actions[2][1] == {
        "name": ["町民ホールの改修", "町民ホールの改修工事"],
        "description": ["ホールの椅子を新しくします。", ""],
        "miss_policy": ["return", "keep"],
        "fresh_days": [30, 60],
        "status": ["open", "closed"],
    }
    audit = client.get("/points/audit?lang=en").get_data(as_text=True)
    assert "Cause or project changed" in audit and "Keep the points for the project" in audit


def test_bad_causes_are_refused_and_change_nothing(world: World) -> None:
    client, csrf = sign_in(world, "officer-a")
    yesterday = (date.today() - timedelta(days=2)).isoformat()
    cases = [
        ({**PROJECT, "goal_points": ""}, "A project needs a goal."),
        ({**PROJECT, "ends_on": ""}, "A project needs a last day."),
        ({**PROJECT, "ends_on": yesterday}, "The last day must be today or later."),
        ({**PROJECT, "goal_points": "0"}, "Enter a whole number"),
        ({**PROJECT, "code": "bad code!"}, "Use only letters"),
        ({**PROJECT, "name": ""}, "Please enter a name."),
        ({**PROJECT, "kind": "lottery"}, "Not a valid choice"),
        ({**PROJECT, "miss_policy": "burn"}, "Not a valid choice"),
        ({**PROJECT, "fresh_days": "0"}, "Enter a number of days"),
        ({**PROJECT, "description": "x" * 1001}, "At most 1000 characters"),
    ]
    for data, message in cases:
        answer = client.post("/points/causes?lang=en", data={**data, "csrf_token": csrf})
        assert answer.status_code == 400, data
        assert message in answer.get_data(as_text=True), (data, message)
    assert client.post("/points/causes", data={**CAUSE, "csrf_token": csrf}).status_code == 302
    twice = client.post("/points/causes?lang=en", data={**CAUSE, "csrf_token": csrf})
    assert twice.status_code == 400 and "already used" in twice.get_data(as_text=True)
    assert len(_causes(world)) == 1
    assert [e.action for e in log(world, world.a)] == ["cause.create"]
    # No CSRF token: nothing.
    assert client.post("/points/causes", data=PROJECT).status_code == 400
    assert len(_causes(world)) == 1


def test_another_municipalitys_cause_is_not_found_and_other_roles_are_refused(
    world: World,
) -> None:
    owner, csrf_b = sign_in(world, "officer-b")
    assert owner.post("/points/causes", data={**CAUSE, "csrf_token": csrf_b}).status_code == 302
    [cause] = _causes(world)
    other, csrf_a = sign_in(world, "officer-a")
    assert other.get(f"/points/causes/{cause.id}").status_code == 404
    edit = {"name": "乗っ取り", "miss_policy": "keep", "fresh_days": "30", "csrf_token": csrf_a}
    assert other.post(f"/points/causes/{cause.id}", data=edit).status_code == 404
    assert "災害復興支援" not in other.get("/points/causes").get_data(as_text=True)
    for login in ("root", "museum-staff"):
        client, csrf = sign_in(world, login)
        assert client.get("/points/causes").status_code == 403
        assert (
            client.post("/points/causes", data={**PROJECT, "csrf_token": csrf}).status_code == 403
        )
    [same] = _causes(world)
    assert (same.name, same.status) == ("災害復興支援", "open")
    assert log(world, world.a) == []
