"""Keep secrets out of the store: mappings, TOML plan text and free text (error messages).

What counts as a secret is decided by key name (``password``, ``passwd``, ``token``,
``secret``, ``api_key``, ``private_key``; any case, anywhere in the key), plus two shapes
that are secret whatever their key: the password in a URL (``scheme://user:PASSWORD@``)
and PEM private-key blocks. Redaction errs on the side of hiding too much: a stored
``***`` costs a re-run of ``greenflow down`` with the value at hand, a stored password
costs a rotation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: What a redacted value becomes.
MASK = "***"

# Substring match on purpose: "sasl.password", "KAFKA_PASSWORD", "ssl.key.secret" and
# "apiKey" must all count.
SECRET_KEY = re.compile(r"password|passwd|token|secret|api[_-]?key|private[_-]?key", re.IGNORECASE)

_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@\"']*:)[^\s/@\"']+(?=@)")
_PEM_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?P<kind>[A-Z0-9 ]*PRIVATE KEY)-----.*?-----END (?P=kind)-----", re.DOTALL
)

_BARE_KEY = r"[A-Za-z0-9_-]+"
_QUOTED_KEY = r"\"[^\"\n]*\"|'[^'\n]*'"
_TOML_KEY = rf"(?:{_BARE_KEY}|{_QUOTED_KEY})(?:[ \t]*\.[ \t]*(?:{_BARE_KEY}|{_QUOTED_KEY}))*"
# Longest forms first: a triple-quoted string must not be read as an empty "" string.
_TOML_VALUE = (
    r'"""[\s\S]*?"""'
    r"|'''[\s\S]*?'''"
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|'[^'\n]*'"
    r"|\[[^\]\n]*\]"
    r"|[^\s,}\]#]+"
)
# A key counts only at the start of a line or right after "{" / "," (inline tables), so
# that "--token=x" inside some other string value is left to the free-text pass.
_TOML_ASSIGN = re.compile(
    rf"(?P<lead>^[ \t]*|[{{,][ \t]*)(?P<key>{_TOML_KEY})(?P<eq>[ \t]*=[ \t]*)(?P<value>{_TOML_VALUE})",
    re.MULTILINE,
)
_TOML_TABLE = re.compile(r"^[ \t]*\[\[?(?P<name>[^\]\n]+)\]\]?[ \t]*(?:#.*)?$", re.MULTILINE)

_TEXT_KEY = r"[\w.-]*(?:password|passwd|token|secret|api[_-]?key|private[_-]?key)[\w.-]*"
_TEXT_VALUE = r"\"[^\"]*\"|'[^']*'|[^\s,;&\"'}]+"
# "password=x", "password: x", '"token": "x"' and "--password x" (command lines in errors).
_TEXT_ASSIGN = re.compile(
    rf"(?P<key>{_TEXT_KEY})(?P<sep>[\"']?[ \t]*[=:][ \t]*)(?P<value>{_TEXT_VALUE})"
    rf"|(?P<flag>--?{_TEXT_KEY})(?P<space>[ \t]+)(?P<flagvalue>{_TEXT_VALUE})",
    re.IGNORECASE,
)


def is_secret_key(key: object) -> bool:
    """Whether values under ``key`` are hidden."""
    return isinstance(key, str) and SECRET_KEY.search(key) is not None


def redact(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``mapping`` with secret values replaced by ``"***"``, at any depth.

    Values under a secret key are replaced whole (a ``secrets`` table disappears
    entirely); strings elsewhere go through :func:`redact_text`, which hides
    ``password=...`` fragments, URL passwords and PEM private keys. Lists, tuples and
    sets become lists, other values are kept as they are.
    """
    return {k: (MASK if is_secret_key(k) else _redact_value(v)) for k, v in mapping.items()}


def _redact_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return redact(value)
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v) for v in value]
    return value


def redact_text(text: str) -> str:
    """Free text (an error message, a command line) with secrets replaced by ``***``."""
    text = _redact_shapes(text)

    def hide(m: re.Match[str]) -> str:
        if m.group("key") is not None:
            return f"{m.group('key')}{m.group('sep')}{_mask_like(m.group('value'))}"
        return f"{m.group('flag')}{m.group('space')}{_mask_like(m.group('flagvalue'))}"

    return _TEXT_ASSIGN.sub(hide, text)


def redact_toml(text: str) -> str:
    """TOML text (a plan) with the values of secret keys replaced by ``"***"``.

    Works line by line on the text rather than on parsed TOML so that comments and
    layout survive and a plan that does not parse is still redacted. Assignments whose
    key matches, and every assignment inside a table whose name matches
    (``[kafka.secrets]``), get the value ``"***"``; the result stays valid TOML.
    Whatever the free-text pass would hide inside other values is hidden too.
    """
    tables = [(m.start(), is_secret_key(m.group("name"))) for m in _TOML_TABLE.finditer(text)]

    def in_secret_table(pos: int) -> bool:
        secret = False
        for start, table_is_secret in tables:
            if start > pos:
                break
            secret = table_is_secret
        return secret

    def hide(m: re.Match[str]) -> str:
        if is_secret_key(m.group("key")) or in_secret_table(m.start()):
            return f'{m.group("lead")}{m.group("key")}{m.group("eq")}"{MASK}"'
        return m.group(0)

    return redact_text(_TOML_ASSIGN.sub(hide, text))


def _redact_shapes(text: str) -> str:
    text = _PEM_PRIVATE_KEY.sub(
        lambda m: f"-----BEGIN {m.group('kind')}-----{MASK}-----END {m.group('kind')}-----", text
    )
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}", text)


def _mask_like(value: str) -> str:
    # Keep the quotes so that JSON or TOML fragments in the text still read as such.
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return f"{value[0]}{MASK}{value[0]}"
    return MASK
