"""Where a suite's models are served: host addresses as Ollama takes them, checked in full."""

from __future__ import annotations

import ipaddress
import os
import re
from urllib.parse import urlsplit

DEFAULT_HOST = "http://localhost:11434"


DEFAULT_PORT = 11434


def normalize_host(raw: str) -> str:
    """Turn an OLLAMA_HOST-style value ('localhost:11434', '0.0.0.0', 'https://h/') into a URL."""
    try:
        return _normalize_host(raw)
    except ValueError as error:
        raise ValueError(f"{raw!r} {error}") from None


def _normalize_host(raw: str) -> str:
    text = raw.strip()
    bare = "://" not in text
    if bare and text.count(":") > 1 and not text.startswith("["):
        text = f"[{text}]"  # a bare IPv6 address such as ::1, as Ollama accepts it
    try:
        url = urlsplit(f"http://{text}" if bare else text)
        host = url.hostname
    except ValueError:  # brackets around something that is not an IPv6 address
        raise ValueError(f"is not an Ollama address: {_BRACKETS_HELP}") from None
    scheme = url.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(
            f"is not an Ollama address: the scheme must be http or https, not {scheme!r}"
        )
    if url.query or url.fragment:
        raise ValueError("is not an Ollama address: remove the '?' query or '#' fragment")
    if not host:
        raise ValueError(
            "is not an Ollama address: use e.g. 'localhost:11434' or 'http://host:11434'"
        )
    host = _check_host_name(host, bracketed="[" in url.netloc)
    try:
        port = url.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        raise ValueError("is not an Ollama address: the port must be a number 1-65535")
    # A server bound to all interfaces is reached on loopback; 0.0.0.0 fails as a target on Windows.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if port is None and bare:
        port = DEFAULT_PORT
    netloc = f"[{host}]" if ":" in host else host
    if url.username is not None:
        netloc = url.netloc.rpartition("@")[0] + "@" + netloc
    if port is not None:
        netloc += f":{port}"
    return f"{scheme}://{netloc}{url.path.rstrip('/')}"


_BRACKETS_HELP = "only an IPv6 address goes in brackets, e.g. '[::1]:11434'"


# Underscores are not RFC 1123, but Docker service names have them and resolvers take them.
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?", re.IGNORECASE)


_MAX_HOST_NAME = 253


def _check_host_name(host: str, bracketed: bool) -> str:
    """The host as a URL carries it: an IPv6 literal (in brackets), four IPv4 numbers 0-255,
    or a DNS host name (RFC 1123 labels; a non-ASCII name in its IDNA form)."""
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"is not an Ollama address: {_BRACKETS_HELP}") from None
        return host
    labels = host.removesuffix(".").split(".")
    if all(label.isdigit() for label in labels):  # an IPv4 address, or meant as one
        _check_ipv4(labels)
        return host
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_host = host  # the label check below says what is wrong
    name = ascii_host.removesuffix(".")
    if len(name) > _MAX_HOST_NAME:
        raise ValueError(
            f"is not an Ollama address: the host name is {len(name)} characters long "
            f"(at most {_MAX_HOST_NAME})"
        )
    for label in name.split("."):
        if not label:
            raise ValueError("is not an Ollama address: the host name has an empty label ('..')")
        if not _LABEL.fullmatch(label):
            raise ValueError(
                f"is not an Ollama address: {label!r} is not a host name label (1-63 letters, "
                "digits, hyphens or underscores, not starting or ending with a hyphen)"
            )
    return ascii_host


def _check_ipv4(numbers: list[str]) -> None:
    allowed = "an IPv4 address is four numbers 0-255, e.g. 192.168.1.30"
    if len(numbers) != 4:
        raise ValueError(
            f"is not an Ollama address: {len(numbers)} numbers where an IPv4 address has four "
            "(0-255 each, e.g. 192.168.1.30)"
        )
    for number in numbers:
        if number != str(int(number)):  # inet_aton would read 010 as octal 8
            raise ValueError(f"is not an Ollama address: {number} has a leading zero ({allowed})")
        if int(number) > 255:
            raise ValueError(f"is not an Ollama address: {number} is not 0-255 ({allowed})")


def _host_from_env() -> str:
    return os.environ.get("OLLAMA_HOST") or DEFAULT_HOST
