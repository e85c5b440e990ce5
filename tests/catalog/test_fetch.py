"""The guard of URL reads: which addresses are not public, what is inside a location, which hosts
CATALOG_ALLOWED_HOSTS names."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from catalog.fetch import UrlScope, address_kind, host_allowed, normal_path

NOT_PUBLIC = {
    "0.0.0.0": "unspecified",
    "0.1.2.3": "unspecified",
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "10.0.0.1": "private",
    "172.16.0.1": "private",
    "172.31.255.255": "private",
    "192.168.1.1": "private",
    "100.64.0.1": "shared",
    "100.127.255.254": "shared",
    "169.254.0.1": "link-local",
    "169.254.169.254": "metadata",
    "169.254.170.2": "metadata",
    "100.100.100.200": "metadata",
    "168.63.129.16": "metadata",
    "192.0.0.192": "metadata",
    "192.0.0.8": "reserved",
    "192.0.2.1": "reserved",
    "198.18.0.1": "reserved",
    "198.51.100.7": "reserved",
    "203.0.113.9": "reserved",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "::": "unspecified",
    "::1": "loopback",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "fd00:ec2::254": "metadata",
    "fec0::1": "private",
    "fe80::1": "link-local",
    "febf::1": "link-local",
    "ff02::1": "multicast",
    "::ffff:127.0.0.1": "loopback",
    "::ffff:10.0.0.1": "private",
    "::ffff:169.254.169.254": "metadata",
    "::127.0.0.1": "loopback",
    "::8.8.8.8": "reserved",
    "64:ff9b::7f00:1": "loopback",
    "64:ff9b::a9fe:a9fe": "metadata",
    "64:ff9b:1::1": "reserved",
    "2002:7f00:1::1": "loopback",
    "2002:c0a8:101::1": "private",
    "2001:db8::1": "reserved",
    "2001::1": "reserved",
    "100::1": "reserved",
    "4000::1": "reserved",
}
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "172.32.0.1",
    "100.128.0.1",
    "169.253.255.255",
    "11.0.0.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize(("address", "kind"), NOT_PUBLIC.items())
def test_addresses_that_are_not_public_are_named(address: str, kind: str) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert address_kind(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        ("/a/b/c.yaml", "/a/b/c.yaml"),
        ("", "/"),
        ("/a/./b/../c.yaml", "/a/c.yaml"),
        ("/a/%2e%2e/c.yaml", "/c.yaml"),
        ("/a/%2E/c.yaml", "/a/c.yaml"),
        ("/a/b/..", "/a/"),
        ("/../../x", "/x"),
        ("/a/..;/x", "/x"),
        ("/a/%7euser/%41", "/a/~user/A"),
        ("/a b/c", "/a%20b/c"),
        ("/group%2frepo/file", "/group%2Frepo/file"),
        ("/a/..%2fx", None),
        ("/a/%2e%2e%2fx", None),
        ("/a/..%5cx", None),
        ("/a/..\\x", None),
        ("/a/%252e%252e/x", None),
        ("/a/%00/x", None),
    ],
)
def test_paths_are_read_as_a_server_would_and_hidden_climbs_are_ambiguous(
    path: str, normal: str | None
) -> None:
    assert normal_path(path) == normal


@pytest.mark.parametrize(
    ("url", "inside"),
    [
        ("https://git.example.com/org/repo/raw/main/catalog-info.yaml", True),
        ("https://git.example.com/org/repo/raw/main/sub/api.yaml?ref=x", True),
        ("https://GIT.example.com./org/repo/raw/main/x.yaml", True),
        ("https://git.example.com:443/org/repo/raw/main/x.yaml", True),
        ("https://user:pw@git.example.com/org/repo/raw/main/x.yaml", True),
        ("https://git.example.com/org/repo/raw/main", False),
        ("https://git.example.com/org/repo/raw/mainly/x.yaml", False),
        ("https://git.example.com/org/repo/raw/main/../other/x.yaml", False),
        ("https://git.example.com/org/repo/raw/main/%2e%2e/x.yaml", False),
        ("https://git.example.com/org/repo/raw/main/..%2f..%2fx.yaml", False),
        ("http://git.example.com/org/repo/raw/main/x.yaml", False),
        ("https://git.example.com:8443/org/repo/raw/main/x.yaml", False),
        ("https://git.example.com.evil.test/org/repo/raw/main/x.yaml", False),
        ("https://evil.test/org/repo/raw/main/x.yaml", False),
        ("https://git.example.com:99999/org/repo/raw/main/x.yaml", False),
        ("file:///org/repo/raw/main/x.yaml", False),
        ("javascript:alert(1)", False),
    ],
)
def test_a_url_location_holds_what_is_under_the_folder_of_its_url_on_its_origin(
    url: str, inside: bool
) -> None:
    scope = UrlScope.of("https://git.example.com/org/repo/raw/main/catalog-info.yaml")

    assert str(scope) == "https://git.example.com/org/repo/raw/main/"
    assert scope.contains(url) is inside


def test_allowed_hosts_are_read_at_each_call_with_or_without_a_port(settings: Any) -> None:
    settings.CATALOG_ALLOWED_HOSTS = ["Git.Internal", "gitlab.internal:8443", "[fd00::5]:80", ""]

    assert host_allowed("git.internal", 443)
    assert host_allowed("gitlab.internal", 8443)
    assert not host_allowed("gitlab.internal", 443)
    assert host_allowed("fd00::5", 80)
    assert not host_allowed("fd00::5", 81)
    assert not host_allowed("other.internal", 443)

    settings.CATALOG_ALLOWED_HOSTS = []
    assert not host_allowed("git.internal", 443)
