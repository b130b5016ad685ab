"""Keep secrets out of the store, the logs and error messages: mappings, TOML plan text,
free text, log events and URLs.

What counts as a secret is decided by key name (``password``, ``passwd``, ``passphrase``,
``token``, ``secret``, ``api_key``, ``private_key``, ``credential``, ``signature``; any case,
anywhere in the key), plus shapes that are secret whatever their key: the user part of a
URL (``scheme://user:PASSWORD@``, ``https://TOKEN@host``), secret-named query parameters
(``?token=``, ``?sig=``...) and PEM private-key blocks. Redaction errs on the side of hiding
too much: a stored ``***`` costs a re-run of ``greenflow down`` with the value at hand, a
stored password costs a rotation.

The same rules serve the store (:func:`redact`, :func:`redact_toml`, :func:`redact_text`),
the CLI's log lines (:func:`redact_event`, a structlog processor) and its error messages;
:func:`strip_userinfo` is the one place that takes credentials out of a URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

#: What a redacted value becomes.
MASK = "***"

_SECRET_WORDS = (
    r"password|passwd|passphrase|token|secret|api[_-]?key|private[_-]?key|credential|signature"
)
# Substring match on purpose: "sasl.password", "KAFKA_PASSWORD", "ssl.key.secret" and
# "apiKey" must all count.
SECRET_KEY = re.compile(_SECRET_WORDS, re.IGNORECASE)

_SCHEME = r"[A-Za-z][A-Za-z0-9+.-]*://"
# The user part of a URL: up to the last "@" of the authority (so that a raw "@" in a
# password hides what follows it too, and quotes are part of it), or, after "user:", up
# to the last "@" before a blank or a quote (a password with a raw "/", which ends the
# authority for a URL parser). It may take more than the credentials, never less.
_USERINFO = r"(?:[^\s/?#]*@|[^\s/?#@:]*:[^\s\"'<>]*@)"
_URL_USERINFO = re.compile(rf"(?P<scheme>\b{_SCHEME}){_USERINFO}")
_LEADING_SCHEME = re.compile(_SCHEME)
_LEADING_USERINFO = re.compile(_USERINFO)
# Query parameters whose short names say secret ("?token=" is the key rule's already).
_QUERY_SECRET = re.compile(r"(?P<head>[?&;](?:sig|key|auth)=)[^&#\s\"'<>]+", re.IGNORECASE)
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

_TEXT_KEY = rf"[\w.-]*(?:{_SECRET_WORDS})[\w.-]*"
# A quoted value may hold escaped quotes (JSON, Python reprs) and takes what is glued to its
# closing quote (password='pa'ss'); an unquoted one may hold quotes (pa'ss). Neither ends on
# a quote, which may close the string the fragment sits in (url = "...?token=x").
_PLAIN = r"[^\s,;&\"'})\]]"
_VALUE_TAIL = rf"(?:[^\s,;&}})\]]*{_PLAIN})?"
_TEXT_VALUE = (
    rf"\"(?:[^\"\\]|\\.)*\"{_VALUE_TAIL}|'(?:[^'\\]|\\.)*'{_VALUE_TAIL}|{_PLAIN}{_VALUE_TAIL}"
)
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
    """Free text (an error message, a command line, a log line) with secrets replaced by
    ``***``: ``password=...`` and ``--token ...`` fragments, the user part of URLs
    (``https://***@host``), secret-named query parameters and PEM private keys."""
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


def strip_userinfo(url: str) -> str:
    """``url`` without its user part (``user:password@``, ``TOKEN@``): what a request is
    sent to (credentials go apart, as basic auth) and what messages show of a URL.

    Works on URLs a parser would refuse too (``http://user:pa/ss@[::1``) and without a
    scheme (``user:secret@host:9090``): where the user part is unclear it takes more than
    the credentials, never less. Query parameters are kept (a request needs them):
    :func:`redact_text` hides secret ones in what is displayed.
    """
    scheme = _LEADING_SCHEME.match(url)
    start = scheme.end() if scheme else 0
    userinfo = _LEADING_USERINFO.match(url, start)
    return url[:start] + url[userinfo.end() :] if userinfo else url


def redact_event(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor that gives log lines the store's redaction: values under secret
    keys become ``***``, strings (and the text of other objects) lose what
    :func:`redact_text` hides. Put it after ``format_exc_info`` (tracebacks are text then)
    and before the renderer."""
    return {k: (MASK if is_secret_key(k) else _redact_log_value(v)) for k, v in event.items()}


def _redact_log_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str | Mapping | list | tuple | set | frozenset):
        return _redact_value(value)
    # An exception or a path, rendered with repr(): kept as it is unless that shows a secret.
    text = repr(value)
    clean = redact_text(text)
    return value if clean == text else clean


def _redact_shapes(text: str) -> str:
    text = _PEM_PRIVATE_KEY.sub(
        lambda m: f"-----BEGIN {m.group('kind')}-----{MASK}-----END {m.group('kind')}-----", text
    )
    text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group('head')}{MASK}", text)


def _mask_like(value: str) -> str:
    # Keep the quotes so that JSON or TOML fragments in the text still read as such.
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return f"{value[0]}{MASK}{value[0]}"
    return MASK
