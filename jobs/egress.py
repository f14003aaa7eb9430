"""Where the http_request job may connect: public addresses, plus what the operator allows.

Refused by default, after name resolution and on every redirect hop: loopback, private, link-local,
multicast, unspecified, shared (carrier-grade NAT), documentation, benchmarking and other
special-purpose or reserved addresses (RFC 6890 and the IANA special-purpose registries), and cloud
metadata endpoints; IPv6 forms that embed an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64
64:ff9b::/96, 6to4) are judged by the address they embed. A host written as a number in the forms
inet_aton(3) and the WHATWG URL standard accept (2130706433, 0x7f.1, 0177.0.0.1, 127.1) is that number.

The operator allows networks and host names with CHIME_EGRESS_ALLOW (comma-separated, from the
environment only), e.g. ``10.0.0.0/8,internal.example.com``. A cloud metadata address stays refused
unless it is listed by itself (``169.254.169.254/32``).
"""
from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

ALLOW_ENV = "CHIME_EGRESS_ALLOW"
HTTP_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance metadata and host agents reachable from inside cloud VMs and containers.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, Oracle, DigitalOcean, OpenStack
    "169.254.170.2",  # AWS ECS task metadata and credentials
    "169.254.170.23",  # AWS EKS pod identity agent
    "100.100.100.200",  # Alibaba Cloud
    "168.63.129.16",  # Azure WireServer (in public address space)
    "192.0.0.192",  # Oracle Cloud (legacy)
    "fd00:ec2::254",  # AWS IMDS over IPv6
    "fd00:ec2::23",  # AWS EKS pod identity agent over IPv6
))
METADATA = "a cloud metadata address"

# (network, what it is), most specific first; from RFC 6890 and the IANA IPv4/IPv6 special-purpose
# address registries. Anything in no row is public.
_SPECIAL_V4 = [
    ("255.255.255.255/32", "a broadcast address"),  # RFC 919
    ("0.0.0.0/8", "an unspecified ('this network') address"),  # RFC 1122
    ("10.0.0.0/8", "a private address"),  # RFC 1918
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),  # RFC 6598
    ("127.0.0.0/8", "a loopback address"),  # RFC 1122
    ("169.254.0.0/16", "a link-local address"),  # RFC 3927
    ("172.16.0.0/12", "a private address"),  # RFC 1918
    ("192.0.0.0/24", "a special-purpose (IETF protocol) address"),  # RFC 6890
    ("192.0.2.0/24", "a documentation address"),  # RFC 5737
    ("192.88.99.0/24", "a special-purpose (6to4 relay) address"),  # RFC 7526
    ("192.168.0.0/16", "a private address"),  # RFC 1918
    ("198.18.0.0/15", "a benchmarking address"),  # RFC 2544
    ("198.51.100.0/24", "a documentation address"),  # RFC 5737
    ("203.0.113.0/24", "a documentation address"),  # RFC 5737
    ("224.0.0.0/4", "a multicast address"),  # RFC 5771
    ("240.0.0.0/4", "a reserved address"),  # RFC 1112
]
_SPECIAL_V6 = [
    ("::/128", "an unspecified address"),  # RFC 4291
    ("::1/128", "a loopback address"),  # RFC 4291
    ("64:ff9b:1::/48", "a private (local-use NAT64) address"),  # RFC 8215
    ("100::/64", "a special-purpose (discard-only) address"),  # RFC 6666
    ("2001:db8::/32", "a documentation address"),  # RFC 3849
    ("2001::/23", "a special-purpose (IETF protocol) address"),  # RFC 2928, includes Teredo
    ("3fff::/20", "a documentation address"),  # RFC 9637
    ("5f00::/16", "a special-purpose (SRv6) address"),  # RFC 9602
    ("fc00::/7", "a private (unique local) address"),  # RFC 4193
    ("fe80::/10", "a link-local address"),  # RFC 4291
    ("fec0::/10", "a private (site-local) address"),  # RFC 3879
    ("ff00::/8", "a multicast address"),  # RFC 4291
]
_SPECIAL = [(ipaddress.ip_network(net), what) for net, what in _SPECIAL_V4 + _SPECIAL_V6]
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")  # RFC 4291: every other IPv6 block is reserved
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # RFC 4291 §2.5.5.1, deprecated
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052
_HOST_NAME = re.compile(r"(?=.{1,253}\.?$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.?")


class EgressError(Exception):
    """The http_request job may not connect there; the message starts with "refused:"."""


@dataclass(frozen=True)
class AllowList:
    """What the operator allows on top of public addresses."""

    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Target:
    """A vetted URL: where to connect (only to these addresses) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[Address, ...]


# --------------------------------------------------------------------------- configuration


def parse_allow_list(text: str) -> AllowList:
    """Parse CHIME_EGRESS_ALLOW; raise ValueError naming an entry that is no network or host name."""
    networks: list[Network] = []
    hosts: set[str] = set()
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        name = entry.lower().rstrip(".")
        if not _HOST_NAME.fullmatch(name) or literal_address(name) is not None:
            raise ValueError(f"{ALLOW_ENV}: {entry!r} is neither a network (10.0.0.0/8, fd00::/8, 192.0.2.7) "
                             "nor a host name (internal.example.com)")
        hosts.add(name)
    return AllowList(tuple(networks), frozenset(hosts))


def allow_list_from_env(env: Mapping[str, str] | None = None) -> AllowList:
    """Read CHIME_EGRESS_ALLOW from the environment (raises ValueError when it is malformed)."""
    return parse_allow_list((os.environ if env is None else env).get(ALLOW_ENV, ""))


# --------------------------------------------------------------------------- addresses


def literal_address(host: str) -> Address | None:
    """Return the address a URL host denotes literally (IPv6, or IPv4 in any inet_aton form), else None."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # one trailing dot, as the WHATWG URL standard allows
    numbers = [_ipv4_number(part) for part in parts]
    if not 1 <= len(numbers) <= 4 or any(n is None for n in numbers):
        return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last + sum(n << (8 * (3 - i)) for i, n in enumerate(head))
    return ipaddress.IPv4Address(value)


def _ipv4_number(part: str) -> int | None:
    """Parse one dotted part: 0x.. hex, 0.. octal, else decimal (inet_aton(3)); None if it is not one."""
    if part[:2].lower() == "0x":
        digits, base = part[2:], 16
    elif len(part) > 1 and part.startswith("0"):
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    allowed = "0123456789abcdefABCDEF"[:base + (6 if base == 16 else 0)]
    if not digits or any(char not in allowed for char in digits):
        return None
    return int(digits, base)


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64 well-known prefix, 6to4)."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def classify(address: Address) -> str | None:
    """Say what kind of non-public address this is ("a loopback address"), or None when it is public."""
    address = _without_scope(address)
    if address in METADATA_ADDRESSES:
        return METADATA
    inner = embedded_ipv4(address)
    if inner is not None:
        kind = classify(inner)
        if kind is not None:
            return f"{kind} ({inner}) inside an IPv6 address"
        if address in _IPV4_COMPATIBLE:
            return "a deprecated IPv4-compatible IPv6 address"
        return None
    for network, what in _SPECIAL:
        if address.version == network.version and address in network:
            return what
    if address.version == 6 and address not in _GLOBAL_UNICAST:
        return "a reserved address"
    return None


def _without_scope(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return ipaddress.IPv6Address(str(address).split("%", 1)[0])
    return address


def refusal(address: Address, allow: AllowList, host: str | None = None) -> str | None:
    """Say why connecting to ``address`` (reached as ``host``) is refused, or None when it is allowed."""
    kind = classify(address)
    if kind is None or _allowed(address, kind, allow, host):
        return None
    plain = _without_scope(address)
    literal = literal_address(host) if host is not None else None
    if host is None or host == str(plain) or isinstance(literal, ipaddress.IPv6Address):
        subject = f"{host or plain} is"
    elif literal is not None:
        subject = f"{host} is {plain},"  # an odd spelling: 2130706433, 0x7f.1, 127.1
    else:
        subject = f"{host} resolves to {plain},"
    if kind.startswith(METADATA):
        return f"refused: {subject} {kind}; allow it by listing {plain}/{plain.max_prefixlen} alone in {ALLOW_ENV}"
    return f"refused: {subject} {kind}; allow it with {ALLOW_ENV}"


def _allowed(address: Address, kind: str, allow: AllowList, host: str | None) -> bool:
    plain = _without_scope(address)
    candidates = [plain] + [inner for inner in [embedded_ipv4(plain)] if inner is not None]
    if kind.startswith(METADATA):  # only an entry naming exactly this address
        return any(net.num_addresses == 1 and a in net for net in allow.networks for a in candidates)
    if host is not None and host.lower().rstrip(".") in allow.hosts:
        return True
    return any(a.version == net.version and a in net for net in allow.networks for a in candidates)


# --------------------------------------------------------------------------- URLs


def url_refusal(url: str, allow: AllowList) -> str | None:
    """What can be known without DNS: a scheme other than http(s), or a literal address that is refused."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in HTTP_SCHEMES:
        return f"refused: {url} is not an http or https URL"
    host = parts.hostname or ""
    address = literal_address(host)
    return refusal(address, allow, host) if address is not None else None


def vet(url: str, allow: AllowList) -> Target:
    """Resolve ``url``'s host and return where to connect; raise EgressError if any address is refused."""
    reason = url_refusal(url, allow)
    if reason is not None:
        raise EgressError(reason)
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    port = parts.port or DEFAULT_PORTS[scheme]
    addresses = resolve(host, port)
    for address in addresses:
        reason = refusal(address, allow, host)
        if reason is not None:
            raise EgressError(reason)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port, path, addresses)


def resolve(host: str, port: int) -> tuple[Address, ...]:
    """The addresses to connect to for ``host``: itself when literal, else what the resolver answers."""
    literal = literal_address(host)
    if literal is not None:
        return (literal,)
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as error:
        raise OSError(f"cannot resolve {host}: {error}") from error
    found: dict[Address, None] = {}
    for _family, _type, _proto, _name, sockaddr in answers:
        text = sockaddr[0] if len(sockaddr) == 2 or not sockaddr[3] else f"{sockaddr[0]}%{sockaddr[3]}"
        found.setdefault(ipaddress.ip_address(text), None)
    return tuple(found)
