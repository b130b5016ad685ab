"""The shared Config validators: each message names the key, what is valid and what was given."""

from __future__ import annotations

import re
from typing import Any

import attrs
import pytest

from greenflow.plan import validators as v
from greenflow.plan.durations import Duration


def _check(validator: v.Validator, value: Any) -> None:
    """Run ``validator`` as a field named ``key`` would."""

    @attrs.frozen
    class Config:
        key: Any = attrs.field(validator=validator)

    Config(value)


def _refused(validator: v.Validator, value: Any) -> str:
    with pytest.raises(ValueError, match=r"^key[.:]") as info:
        _check(validator, value)
    return str(info.value)


@pytest.mark.parametrize(
    ("validator", "good", "bad", "expected"),
    [
        (v.positive, [0.1, 3, Duration(2), None], [0, -5, True, "3", float("nan")], "a number > 0"),
        (v.non_negative, [0, 2.5, None], [-0.1, False, "0"], "a number ≥ 0"),
        (v.fraction, [1, 0.5], [0, 1.5], "a fraction in (0, 1]"),
        (v.ratio, [0, 1, 0.9], [-0.1, 1.5, True, "1"], "a fraction in [0, 1]"),
        (v.at_least(1), [1, 10], [0, 1.5, True, "2"], "an integer ≥ 1"),
        (v.at_least(0), [0, 3], [-1, 0.0], "an integer ≥ 0"),
        (v.one_of("auto", "procfs"), ["auto", "procfs"], ["proc"], "one of 'auto', 'procfs'"),
        (v.non_empty, [[1], "x", {"a": 1}], [[], "", {}], "at least one value"),
        (
            v.label_name,
            ["node", "_x9"],
            ["node-name", "", "9x", 3],
            "a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
        ),
        (v.absolute_path, ["/data"], ["data", "/a\nb"], "an absolute path"),
    ],
)
def test_each_validator_names_the_key_and_what_is_valid(
    validator: v.Validator, good: list[Any], bad: list[Any], expected: str
) -> None:
    """Valid values pass; invalid ones (wrong type included) fail with `key: expected ..., got ...`."""
    for value in good:
        _check(validator, value)
    for value in bad:
        assert _refused(validator, value) == f"key: expected {expected}, got {value!r}"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("localhost:9090", "localhost:9090"),
        ("ftp://user:secret@host/x", "ftp://host/x"),
        ("http://user:secret@/api", "http:///api"),
        ("user:secret@host:9090", "host:9090"),  # no scheme: "user" would be taken for one
        ("http://user:secret@[::1", "http://[::1"),  # unparsable
        ("ftp://secret@host/x", "ftp://host/x"),  # a token as the user
        ("ftp://user:p@secret@host/x", "ftp://host/x"),  # a raw @ in the password
        ("ftp://user:p'secret\"@host/x", "ftp://host/x"),  # quotes in the password
        ("http://user:p/secret@[::1", "http://[::1"),  # a raw / in the password
    ],
)
def test_http_url_never_repeats_credentials(url: str, shown: str) -> None:
    """A URL that is not http(s)://host is refused, shown without its user and password."""
    message = _refused(v.http_url, url)
    assert message == f"key: expected an http(s)://host[:port] URL, got {shown!r}"
    assert "secret" not in message


def test_http_url_accepts_http_and_https_with_a_host() -> None:
    """http:// and https:// URLs with a host, credentials or not, and None pass."""
    for url in (
        "http://127.0.0.1:9090",
        "https://u:p@vm.example/api/v1/write",
        "http://[::1]:80",
        None,
    ):
        _check(v.http_url, url)


def test_regex_checks_it_compiles_and_has_the_groups_asked() -> None:
    """`regex()` refuses what `re` cannot compile, with the reason; `groups` counts captures."""
    _check(v.regex(), r"sent \d+")
    _check(v.regex(groups=1), r"sent (\d+) messages")
    _check(v.regex(groups=1), None)
    message = _refused(v.regex(), "(unclosed")
    assert message.startswith("key: expected a regular expression, got '(unclosed' (missing )")
    example, bad = r"sent (\d+) messages", r"sent \d+"
    assert _refused(v.regex(groups=1, example=example), bad) == (
        f"key: expected a regular expression with a capturing group, e.g. '{example}', got {bad!r}"
    )
    assert "at least 2 capturing groups" in _refused(v.regex(groups=2), "(a)b")


def test_matches_wants_a_whole_match_and_says_what_it_is() -> None:
    """`matches` refuses a string the pattern does not match whole, saying what is expected."""
    check = v.matches(r"[a-z]+", "lower-case letters")
    _check(check, "abc")
    _check(check, None)
    for value in ("abc1", "", 3):
        assert _refused(check, value) == f"key: expected lower-case letters, got {value!r}"


@pytest.mark.parametrize(
    "matchers",
    [
        "",
        'job="scaphandre"',
        ' job = "scaphandre" , namespace!=\'monitoring\', node=~`n[0-9]+`, pod!~"x\\"y",',
        '"utf8.name"="x"',
        'job=~"("',  # syntax only: the regular expression is Prometheus' to judge
    ],
)
def test_label_matchers_accept_promql_matchers(matchers: str) -> None:
    """Comma-separated PromQL label matchers without braces pass, in any quoting PromQL takes."""
    _check(v.label_matchers, matchers)


@pytest.mark.parametrize(
    "matchers",
    ['{job="x"}', "job=x", 'job="x" namespace="y"', 'job="x",,a="b"', 'job-name="x"', 'job=="x"'],
)
def test_label_matchers_refuse_what_promql_would(matchers: str) -> None:
    """Braces, bare values, missing commas and bad names are refused, with an example."""
    message = _refused(v.label_matchers, matchers)
    assert message.startswith("key: expected PromQL label matchers without braces, e.g. 'job=")
    assert message.endswith(f"got {matchers!r}")


def test_label_map_checks_names_values_and_reserved_names() -> None:
    """A label table needs label names as keys, strings as values and no reserved name."""
    check = v.label_map(reserved=("run_id", "host"), why="GreenFlow sets them")
    _check(check, {"lab": "rack-3", "_x": ""})
    _check(check, {})
    assert _refused(check, {"bad-name": "x"}) == (
        "key: expected Prometheus label names ([a-zA-Z_][a-zA-Z0-9_]*) as keys, got 'bad-name'"
    )
    assert _refused(check, {"run_id": "x"}) == (
        "key: expected label names other than run_id, host (GreenFlow sets them), got 'run_id'"
    )
    assert _refused(check, {"lab": 3}) == "key.lab: expected a string, got 3"


def test_quantities_name_the_key() -> None:
    """cpu and memory quantities are refused with the key in front of the quantity's message."""
    assert re.match(r"key: .*cpu amount", _refused(v.cpu_quantity, "0"))
    assert re.match(r"key: .*memory size", _refused(v.memory_quantity, "512"))
