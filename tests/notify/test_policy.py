"""Escalation policies: the default chain, TOML loading and its errors, snapshots."""

import json

import pytest

from notify.policy import (
    DEFAULT_POLICY,
    PolicyError,
    StepKind,
    load_policy,
    policy_from_dict,
    policy_named,
)

VALID = """
name = "night"

[[steps]]
kind = "notify_resident"
wait = 10
channels = ["sms"]

[[steps]]
kind = "notify_volunteers"
wait = 20
batch_size = 2

[[steps]]
kind = "repeat_staff"
wait = 60
channels = ["sms", "console"]
"""


def test_the_default_policy_asks_resident_family_volunteers_then_staff_until_acknowledged():
    assert [(s.kind, s.wait, s.batch_size) for s in DEFAULT_POLICY.steps] == [
        (StepKind.notify_resident, 15, None),
        (StepKind.notify_family, 30, None),
        (StepKind.notify_volunteers, 30, 1),
        (StepKind.notify_staff, 30, None),
        (StepKind.repeat_staff, 30, None),
    ]


def test_a_policy_loads_from_toml_and_its_snapshot_survives_json():
    policy = load_policy(VALID)
    assert policy.name == "night"
    assert policy.steps[1].batch_size == 2
    assert policy.steps[2].channels == ("sms", "console")
    snapshot = json.loads(json.dumps(policy.snapshot()))
    assert policy_from_dict(snapshot) == policy


def test_a_policy_loads_from_a_file(tmp_path):
    path = tmp_path / "night.toml"
    path.write_text(VALID)
    assert load_policy(path) == load_policy(str(path)) == load_policy(VALID)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[steps]]\nkind = "call_police"\nwait = 5', "unknown step kind 'call_police'"),
        ('[[steps]]\nkind = "notify_family"\nwait = -5', "wait must not be negative"),
        ('[[steps]]\nkind = "notify_family"', "wait must be a whole number"),
        ('[[steps]]\nkind = "notify_family"\nwait = 5\nchannels = ["fax"]', "unknown channel"),
        ('[[steps]]\nkind = "notify_family"\nwait = 5\nchannels = []', "non-empty list"),
        ('[[steps]]\nkind = "notify_volunteers"\nwait = 5\nbatch_size = 0', "batch_size"),
        ('[[steps]]\nkind = "notify_family"\nwait = 5\nwiat = 3', "unknown field"),
        ('[[steps]]\nkind = "repeat_staff"\nwait = 0', "wait above 0"),
        (
            '[[steps]]\nkind = "repeat_staff"\nwait = 5\n'
            '[[steps]]\nkind = "notify_family"\nwait = 5',
            "must be the last step",
        ),
        ('name = "empty"', "at least one"),
        ("[[steps]\nkind=", "not valid TOML"),
    ],
)
def test_a_bad_policy_is_refused_with_a_clear_message(toml, message):
    with pytest.raises(PolicyError, match=message):
        load_policy(toml + "\n")


def test_a_household_names_its_policy_and_an_unknown_name_gets_the_default(tmp_path):
    (tmp_path / "night.toml").write_text(VALID)
    assert policy_named("night", tmp_path) == load_policy(VALID)
    assert policy_named("default") is DEFAULT_POLICY
    assert policy_named("no-such-policy", tmp_path) is DEFAULT_POLICY
