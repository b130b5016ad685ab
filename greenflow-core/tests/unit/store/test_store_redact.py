"""Secrets never reach the store: redaction of mappings, TOML plans and free text."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from greenflow.api.context import Sample
from greenflow.store import DB_NAME, RunStatus, Store
from greenflow.store.redact import MASK, redact, redact_text, redact_toml

PASSWORD = "Hunter2-Very-Secret"
TOKEN = "tok_5f1e8a9b77c0"


def test_redact_nested_keys_case_insensitive() -> None:
    """Values under secret-looking keys are masked at any depth, in any case."""
    data = {
        "user": "alice",
        "Password": PASSWORD,
        "sasl": {"mechanism": "PLAIN", "sasl.jaas.PASSWD": "x", "nested": [{"api_key": "k"}]},
        "env": {"KAFKA_SECRET": "s", "GITHUB_TOKEN": TOKEN, "apiKey": "a", "ssh_private_key": "p"},
        "tokens": ["a", "b"],
        "port": 9092,
    }
    assert redact(data) == {
        "user": "alice",
        "Password": MASK,
        "sasl": {"mechanism": "PLAIN", "sasl.jaas.PASSWD": MASK, "nested": [{"api_key": MASK}]},
        "env": {
            "KAFKA_SECRET": MASK,
            "GITHUB_TOKEN": MASK,
            "apiKey": MASK,
            "ssh_private_key": MASK,
        },
        "tokens": MASK,
        "port": 9092,
    }


def test_redact_does_not_modify_its_input() -> None:
    """redact returns a copy and leaves the caller's mapping alone."""
    data = {"inner": {"password": PASSWORD}}
    redact(data)
    assert data == {"inner": {"password": PASSWORD}}


def test_redact_secret_shapes_in_strings() -> None:
    """URL user parts, PEM private keys and password= fragments are hidden whatever the key."""
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAKCAQ\n-----END RSA PRIVATE KEY-----"
    out = redact(
        {
            "url": f"https://alice:{PASSWORD}@api.grid5000.fr/stable",
            "key": pem,
            "command": f"producer --password {PASSWORD} --rate 10",
            "cmdline": f"client token={TOKEN} x",
        }
    )
    assert out["url"] == f"https://{MASK}@api.grid5000.fr/stable"
    assert out["key"] == f"-----BEGIN RSA PRIVATE KEY-----{MASK}-----END RSA PRIVATE KEY-----"
    assert out["command"] == f"producer --password {MASK} --rate 10"
    assert out["cmdline"] == f"client token={MASK} x"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f'password = "{PASSWORD}"', f'password = "{MASK}"'),
        (f"  db_password='{PASSWORD}'", f'  db_password="{MASK}"'),
        (f'sasl.password = "{PASSWORD}"  # keep me', f'sasl.password = "{MASK}"  # keep me'),
        (f'"api_key" = "{TOKEN}"', f'"api_key" = "{MASK}"'),
        (f"token = {12345678}", f'token = "{MASK}"'),
        (
            f'auth = {{ user = "bob", secret = "{TOKEN}" }}',
            f'auth = {{ user = "bob", secret = "{MASK}" }}',
        ),
        (f'tokens = ["{TOKEN}", "b"]', f'tokens = "{MASK}"'),
        ('user = "alice"', 'user = "alice"'),
        ("token_count = 3", 'token_count = "***"'),
    ],
)
def test_redact_toml_lines(line: str, expected: str) -> None:
    """Assignments to secret-looking keys in TOML get the value "***"."""
    assert redact_toml(line + "\n") == expected + "\n"


def test_redact_toml_keeps_the_plan_valid_and_complete() -> None:
    """A redacted plan still parses, keeps its other values and has no secret left."""
    plan = f'''# a plan
[experiment]
name = "kafka"   # comment stays

[platform]
type = "g5k"
password = "{PASSWORD}"
url = "https://alice:{PASSWORD}@api.grid5000.fr"

[platform.secrets]
anything = "{TOKEN}"

[[services]]
type = "kafka"
env = {{ KAFKA_SASL_PASSWORD = "{PASSWORD}", HEAP = "1g" }}
jaas = """
user="alice" token="{TOKEN}"
"""

[workload]
command = "bench --token {TOKEN} --rate 5"
rates = [1000, 2000]
'''
    out = redact_toml(plan)
    assert PASSWORD not in out and TOKEN not in out
    parsed = tomllib.loads(out)
    assert parsed["experiment"]["name"] == "kafka"
    assert parsed["platform"]["password"] == MASK
    assert parsed["platform"]["url"] == f"https://{MASK}@api.grid5000.fr"
    assert parsed["platform"]["secrets"] == {"anything": MASK}
    assert parsed["services"][0]["env"] == {"KAFKA_SASL_PASSWORD": MASK, "HEAP": "1g"}
    assert parsed["workload"]["rates"] == [1000, 2000]
    assert parsed["workload"]["command"] == f"bench --token {MASK} --rate 5"
    assert "# comment stays" in out


def test_redact_text_error_messages() -> None:
    """Error messages keep their words but lose the secrets in them."""
    assert (
        redact_text(f'login failed: {{"password": "{PASSWORD}"}}')
        == 'login failed: {"password": "***"}'
    )
    assert redact_text(f"cmd failed: kcat -X sasl.password={PASSWORD} -b h") == (
        "cmd failed: kcat -X sasl.password=*** -b h"
    )
    assert redact_text("connection refused") == "connection refused"


def test_secrets_never_reach_the_database_file(tmp_path: Path) -> None:
    """A password in plan text, state, config, provenance and errors is in neither the file nor the WAL."""
    plan = f'[platform]\ntype = "ssh"\npassword = "{PASSWORD}"\n[workload]\ncommand = "x --token {TOKEN}"\n'
    store = Store.open(tmp_path)
    try:
        exp = store.upsert_experiment("e", "plan.toml", plan, 1)
        store.record_state(
            exp,
            "platform",
            "platform",
            "ssh",
            {"user": "bob", "password": PASSWORD},
            {"token": TOKEN},
        )
        store.record_state(
            exp,
            "service",
            "kafka",
            "kafka",
            {"env": {"SASL_PASSWORD": PASSWORD}},
            {"url": f"sasl://u:{PASSWORD}@h:9092"},
        )
        store.set_provenance(exp, {"plan": plan, "platform": {"api": {"password": PASSWORD}}})
        store.add_run(exp, "r1", {"rate": 1}, 0, 0)
        store.set_run_status("r1", RunStatus.RUNNING)
        store.set_run_status(
            "r1", RunStatus.FAILED, f"command failed: x --token {TOKEN} --password={PASSWORD}"
        )
        store.add_samples(exp, None, [Sample(1.0, "power_watts", 1.0, "watts", "rapl", "h")])

        files = [tmp_path / DB_NAME, tmp_path / f"{DB_NAME}-wal"]
        assert files[1].stat().st_size > 0, "the WAL should hold the writes while the store is open"
        for path in files:
            data = path.read_bytes()
            assert PASSWORD.encode() not in data, path.name
            assert TOKEN.encode() not in data, path.name
        assert store.get_experiment("e").plan_text.count(MASK) == 2  # type: ignore[union-attr]
        assert store.live_state(exp)[0]["config"] == {"user": "bob", "password": MASK}
    finally:
        store.close()
    data = (tmp_path / DB_NAME).read_bytes()  # after the checkpoint on close
    assert PASSWORD.encode() not in data and TOKEN.encode() not in data


#: What must never be seen; each form below hides it behind the trick that leaked it.
SECRET = "S3cr3t-Value-42"

#: Issue 16, item 14: every way a secret rode in a URL or a message past the redaction.
URL_FORMS = {
    "quote-in-password": f"https://alice:pa'{SECRET}@db.example/x",
    "double-quote-in-password": f'https://alice:pa"{SECRET}@db.example/x',
    "token-as-user": f"https://{SECRET}@git.example/org/repo.git",
    "raw-at-in-password": f"https://alice:p@{SECRET}@db.example/x",
    "raw-slash-in-password": f"https://alice:p/{SECRET}@db.example/x",
    "query-token": f"https://api.example/v1/items?token={SECRET}&page=2",
    "query-sig": f"https://blob.example/c/f.csv?sv=2022-11-02&sig={SECRET}",
    "query-api-key": f"https://api.example/v1?api_key={SECRET}",
}
TEXT_FORMS = {
    **URL_FORMS,
    "quote-in-assignment": f"password=pa'{SECRET}",
    "quoted-with-inner-quote": f"password='pa'{SECRET}'",
    "escaped-quote-in-json": f'{{"password": "pa\\"{SECRET}", "user": "alice"}}',
    "escaped-quote-in-repr": f"{{'token': 'pa\\'{SECRET}'}}",
}


@pytest.mark.parametrize("text", TEXT_FORMS.values(), ids=TEXT_FORMS.keys())
def test_redact_text_hides_every_form(text: str) -> None:
    """Quotes in a password, a token as a URL's user, a raw @ or / in a password, secret
    query parameters: nothing of the secret is left, in a message as on its own."""
    assert SECRET not in redact_text(text)
    assert SECRET not in redact_text(f"connecting to {text} failed: refused")
    assert SECRET not in redact_text(repr(f"GET {text}"))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"https://{SECRET}@git.example/org", "https://***@git.example/org"),
        (f"https://alice:p@{SECRET}@db.example/x", "https://***@db.example/x"),
        (f"https://alice:pa'{SECRET}@db.example", "https://***@db.example"),
        (
            f"https://api.example/v1?token={SECRET}&page=2",
            "https://api.example/v1?token=***&page=2",
        ),
        (f"https://b.example/f?sv=1&sig={SECRET}", "https://b.example/f?sv=1&sig=***"),
        (
            "http://127.0.0.1:9090/api/v1/query?query=up",
            "http://127.0.0.1:9090/api/v1/query?query=up",
        ),
        (
            "kafka://broker-0:9092 and alice@example.org",
            "kafka://broker-0:9092 and alice@example.org",
        ),
    ],
)
def test_redact_text_keeps_the_rest_of_a_url(url: str, expected: str) -> None:
    """Only the secret goes: host, path and other parameters stay readable."""
    assert redact_text(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://vm.example:8428/api/v1/write", "https://vm.example:8428/api/v1/write"),
        (f"https://alice:{SECRET}@vm.example:8428/w", "https://vm.example:8428/w"),
        (f"https://{SECRET}@vm.example/w", "https://vm.example/w"),
        (f"https://alice:p@{SECRET}@vm.example/w", "https://vm.example/w"),
        (f"https://alice:pa\"{SECRET}'@vm.example/w", "https://vm.example/w"),
        (f"http://alice:p/{SECRET}@[::1", "http://[::1"),  # no parser takes it
        (f"alice:{SECRET}@host:9090", "host:9090"),  # no scheme
        ("http://host/a?token=x", "http://host/a?token=x"),  # a request needs its query
    ],
)
def test_strip_userinfo_is_the_one_url_helper(url: str, expected: str) -> None:
    """strip_userinfo drops the whole user part, also where a URL parser would give up."""
    from greenflow.api.prometheus import safe_url
    from greenflow.store.redact import strip_userinfo

    assert strip_userinfo(url) == expected
    assert safe_url is strip_userinfo


@pytest.mark.parametrize("url", URL_FORMS.values(), ids=URL_FORMS.keys())
def test_every_form_stays_out_of_the_database_file(tmp_path: Path, url: str) -> None:
    """In the plan text, recorded config and state, provenance and a run's error, no form
    of the secret reaches the database file or its WAL."""
    plan = f'[remote_write]\nurl = {json.dumps(url)}\n[workload]\ncommand = "curl {url}"\n'
    store = Store.open(tmp_path)
    try:
        exp = store.upsert_experiment("e", "plan.toml", plan, 1)
        store.record_state(exp, "service", "web", "web", {"url": url}, {"endpoint": url})
        store.set_provenance(exp, {"plan": plan, "platform": {"api": url}})
        store.add_run(exp, "r1", {"rate": 1}, 0, 0)
        store.set_run_status("r1", RunStatus.RUNNING)
        store.set_run_status("r1", RunStatus.FAILED, f"GET {url} failed: 401 for {url!r}")
        for path in (tmp_path / DB_NAME, tmp_path / f"{DB_NAME}-wal"):
            assert SECRET.encode() not in path.read_bytes(), path.name
        assert tomllib.loads(store.get_experiment("e").plan_text)  # type: ignore[union-attr]
    finally:
        store.close()
