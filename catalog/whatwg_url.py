"""Whether a string parses as a WHATWG URL, as `new URL()` in Backstage's Node.js judges it.

Hand-written rather than ada-url (the parser Node.js itself uses): ada-url 4.0.0 accepts
`http://xn--a`, which Node 20's `new URL()` (ada 2.9.2) and this module refuse.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote_to_bytes

# Backstage checks link URLs with `new URL(url)`. The parser forgives much (spaces around the
# URL, tabs and newlines in it, `https:example.com`, any text after `mailto:`) and fails on
# little: no scheme, a special scheme without a host, a host with a forbidden character or
# not a valid IP address, a port past 65535. Internationalised hosts are checked with Unicode
# normalisation standing in for UTS #46, close enough for the hosts people write.

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_SPECIAL_SCHEMES = frozenset({"ftp", "http", "https", "ws", "wss"})
_C0_OR_SPACE = "".join(map(chr, range(0x21)))
_TAB_OR_NEWLINE = str.maketrans("", "", "\t\n\r")
_AUTHORITY_END = {True: re.compile(r"[/?#\\]"), False: re.compile(r"[/?#]")}
_PORT = re.compile(r"[0-9]*")
_WINDOWS_DRIVE = re.compile(r"[A-Za-z][:|]")
_FORBIDDEN_HOST = frozenset("\x00\t\n\r #/:<>?@[\\]^|")
_FORBIDDEN_DOMAIN = _FORBIDDEN_HOST | frozenset(map(chr, range(0x20))) | {"%", "\x7f"}
_MAPPED_TO_NOTHING = dict.fromkeys(
    [0xAD, 0x34F, 0x180B, 0x180C, 0x180D, 0x180F, 0x200B, 0x2060, 0xFEFF, *range(0xFE00, 0xFE10)]
)
_IDEOGRAPHIC_STOPS = {0x3002: "."}
_NOT_IN_HOSTS = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zs", "Zl", "Zp"})
_DIGITS = {10: frozenset("0123456789"), 8: frozenset("01234567"),
           16: frozenset("0123456789abcdefABCDEF")}  # fmt: skip


def whatwg_url_parses(text: str) -> bool:
    """Whether the WHATWG URL parser (`new URL(text)` in Node.js) accepts the text."""
    url = text.strip(_C0_OR_SPACE).translate(_TAB_OR_NEWLINE)
    scheme = _SCHEME.match(url)
    if scheme is None:
        return False
    name, rest = scheme.group()[:-1].lower(), url[scheme.end() :]
    if name == "file":
        if rest[:1] not in ("/", "\\") or rest[1:2] not in ("/", "\\"):
            return True  # a path
        host = _AUTHORITY_END[True].split(rest[2:], maxsplit=1)[0]
        return not host or bool(_WINDOWS_DRIVE.fullmatch(host)) or _host_parses(host, True)
    if name in _SPECIAL_SCHEMES:
        return _authority_parses(rest.lstrip("/\\"), special=True)
    if rest.startswith("//"):
        return _authority_parses(rest[2:], special=False)
    return True  # an opaque path, such as mailto:'s: anything goes


def _authority_parses(rest: str, *, special: bool) -> bool:
    authority = _AUTHORITY_END[special].split(rest, maxsplit=1)[0]
    host_and_port = authority[authority.rfind("@") + 1 :]
    if "@" in authority and not host_and_port:
        return False
    inside_brackets, host, port = False, host_and_port, None
    for index, character in enumerate(host_and_port):
        if character == ":" and not inside_brackets:
            host, port = host_and_port[:index], host_and_port[index + 1 :]
            break
        if character == "[":
            inside_brackets = True
        elif character == "]":
            inside_brackets = False
    if port is not None:
        digits = port.lstrip("0")
        if not host or not _PORT.fullmatch(port) or len(digits) > 5 or int(digits or 0) > 65535:
            return False
    elif not host:
        return not special
    return _host_parses(host, special)


def _host_parses(host: str, special: bool) -> bool:
    if host.startswith("["):
        return host.endswith("]") and _ipv6_parses(host[1:-1])
    if not special:  # an opaque host
        return _FORBIDDEN_HOST.isdisjoint(host)
    domain = _domain_to_ascii(unquote_to_bytes(host).decode("utf-8", errors="replace"))
    if not domain or not _FORBIDDEN_DOMAIN.isdisjoint(domain):
        return False
    return _ipv4_parses(domain) if _ends_in_number(domain) else True


def _domain_to_ascii(domain: str) -> str | None:
    if not domain.isascii():
        domain = unicodedata.normalize("NFKC", domain).lower()
        domain = unicodedata.normalize("NFKC", domain).translate(_MAPPED_TO_NOTHING)
        domain = domain.translate(_IDEOGRAPHIC_STOPS)
        if not _valid_in_hosts(domain):
            return None
    labels = domain.lower().split(".")
    for index, label in enumerate(labels):
        if not label.isascii():
            if label.startswith("xn--"):
                return None
            labels[index] = "xn--" + label.encode("punycode").decode()
        elif label.startswith("xn--"):
            try:
                decoded = label[4:].encode().decode("punycode")
            except UnicodeError:
                return None
            mapped = unicodedata.normalize("NFKC", decoded.lower())
            if not decoded or decoded != mapped or not _valid_in_hosts(decoded):
                return None
    return ".".join(labels)


def _valid_in_hosts(text: str) -> bool:
    """No character UTS #46 disallows, and no label that starts with a combining mark."""
    if "\ufffd" in text or any(
        unicodedata.category(character) in _NOT_IN_HOSTS for character in text
    ):
        return False
    return not any(label and unicodedata.category(label[0])[0] == "M" for label in text.split("."))


def _ends_in_number(domain: str) -> bool:
    parts = domain.split(".")
    if parts[-1] == "":
        if len(parts) == 1:
            return False
        parts.pop()
    last = parts[-1]
    return bool(last) and last.isdigit() or _ipv4_number(last) is not None


def _ipv4_number(part: str) -> int | None:
    if not part:
        return None
    radix = 10
    if part[:2] in ("0x", "0X"):
        radix, part = 16, part[2:]
    elif len(part) > 1 and part[0] == "0":
        radix, part = 8, part[1:]
    if not part:
        return 0
    if not _DIGITS[radix].issuperset(part):
        return None
    # Past 2**32 the value no longer matters; Python's int() refuses very long decimal text.
    return int(part, radix) if len(part.lstrip("0")) <= 32 else 1 << 128


def _ipv4_parses(domain: str) -> bool:
    parts = domain.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        return False
    numbers = [number for number in map(_ipv4_number, parts) if number is not None]
    if len(numbers) < len(parts):
        return False
    *leading, last = numbers
    return all(number <= 255 for number in leading) and last < 256 ** (5 - len(numbers))


def _ipv6_parses(text: str) -> bool:
    """The WHATWG IPv6 parser's steps, keeping only where it fails."""
    pieces, compressed, pointer, length = 0, False, 0, len(text)

    def at(index: int) -> str:
        return text[index] if index < length else ""

    if at(0) == ":":
        if at(1) != ":":
            return False
        pointer, pieces, compressed = 2, 1, True
    while pointer < length:
        if pieces == 8:
            return False
        if at(pointer) == ":":
            if compressed:
                return False
            pointer, pieces, compressed = pointer + 1, pieces + 1, True
            continue
        digits = 0
        while digits < 4 and at(pointer) and at(pointer) in _DIGITS[16]:
            pointer, digits = pointer + 1, digits + 1
        if at(pointer) == ".":
            if digits == 0 or pieces > 6:
                return False
            pointer -= digits
            numbers_seen = 0
            while pointer < length:
                if numbers_seen:
                    if at(pointer) != "." or numbers_seen >= 4:
                        return False
                    pointer += 1
                if not at(pointer).isdigit() or not at(pointer).isascii():
                    return False
                piece: int | None = None
                while at(pointer).isascii() and at(pointer).isdigit():
                    if piece == 0:
                        return False
                    piece = int(at(pointer)) if piece is None else piece * 10 + int(at(pointer))
                    if piece > 255:
                        return False
                    pointer += 1
                numbers_seen += 1
                if numbers_seen in (2, 4):
                    pieces += 1
            return numbers_seen == 4 and (compressed or pieces == 8)
        if at(pointer) == ":":
            pointer += 1
            if pointer == length:
                return False
        elif pointer < length:
            return False
        pieces += 1
    return compressed or pieces == 8
