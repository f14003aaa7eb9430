"""Where the http_request job may connect (jobs.egress), and the job itself against a real local server.

Expected kinds come from the RFCs that define each block (RFC 6890's special-purpose registry and the
RFCs it lists), not from the ipaddress module's flags; the odd IPv4 spellings are checked against the
C library's inet_aton(3).
"""
from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from jobs import egress, registry
from jobs.builtin import MAX_REDIRECTS, EgressRefusedError, HttpRequestError
from jobs.egress import AllowList, classify, literal_address, parse_allow_list, refusal
from jobs.registry import ArgsError
from chime.config import ConfigError, settings_from_env

PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")

# (address, a word its kind must contain; None = public), with the defining RFC.
ADDRESSES = [
    ("0.0.0.0", "unspecified"), ("0.1.2.3", "unspecified"),  # RFC 1122 §3.2.1.3 "this network"
    ("10.0.0.1", "private"), ("10.255.255.255", "private"),  # RFC 1918 §3
    ("172.16.0.1", "private"), ("172.31.255.255", "private"),  # RFC 1918 §3
    ("192.168.0.1", "private"), ("192.168.255.255", "private"),  # RFC 1918 §3
    ("100.64.0.1", "carrier-grade NAT"), ("100.127.255.254", "carrier-grade NAT"),  # RFC 6598
    ("127.0.0.1", "loopback"), ("127.255.255.254", "loopback"),  # RFC 1122 §3.2.1.3
    ("169.254.0.1", "link-local"), ("169.254.255.254", "link-local"),  # RFC 3927
    ("192.0.0.8", "special-purpose"),  # RFC 6890 §2.2.2 IETF protocol assignments
    ("192.0.2.1", "documentation"), ("198.51.100.7", "documentation"), ("203.0.113.9", "documentation"),  # RFC 5737
    ("198.18.0.1", "benchmarking"), ("198.19.255.255", "benchmarking"),  # RFC 2544
    ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"),  # RFC 5771
    ("240.0.0.1", "reserved"), ("255.255.255.255", "broadcast"),  # RFC 1112 §4, RFC 919
    ("169.254.169.254", "metadata"), ("169.254.170.2", "metadata"),  # AWS, GCP, Azure; ECS
    ("100.100.100.200", "metadata"), ("168.63.129.16", "metadata"),  # Alibaba; Azure WireServer
    ("8.8.8.8", None), ("1.1.1.1", None), ("93.184.215.14", None),
    ("11.0.0.1", None), ("172.15.255.255", None), ("172.32.0.1", None), ("100.63.255.255", None),
    ("100.128.0.1", None), ("198.20.0.1", None), ("223.255.255.255", None), ("192.0.1.1", None),
    ("::", "unspecified"), ("::1", "loopback"),  # RFC 4291 §2.5.2, §2.5.3
    ("fc00::1", "unique local"), ("fd12:3456:789a::1", "unique local"),  # RFC 4193
    ("fe80::1", "link-local"), ("febf:ffff::1", "link-local"),  # RFC 4291 §2.5.6
    ("fec0::1", "site-local"),  # RFC 3879
    ("ff02::1", "multicast"), ("ff0e::101", "multicast"),  # RFC 4291 §2.7
    ("2001:db8::1", "documentation"), ("3fff::1", "documentation"),  # RFC 3849, RFC 9637
    ("2001::1", "special-purpose"), ("2001:2::1", "special-purpose"),  # Teredo RFC 4380, benchmarking RFC 5180
    ("100::1", "discard"),  # RFC 6666
    ("64:ff9b:1::1", "local-use NAT64"),  # RFC 8215
    ("4000::1", "reserved"), ("::1:0:0:1", "reserved"),  # RFC 4291 §2.4: only 2000::/3 is global unicast
    ("fd00:ec2::254", "metadata"),  # AWS IMDS over IPv6
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.1.2.3", "private"),  # RFC 4291 §2.5.5.2 IPv4-mapped
    ("::ffff:169.254.169.254", "metadata"),
    ("::127.0.0.1", "loopback"), ("::8.8.8.8", "IPv4-compatible"),  # RFC 4291 §2.5.5.1 (deprecated)
    ("64:ff9b::127.0.0.1", "loopback"), ("64:ff9b::192.168.0.1", "private"),  # RFC 6052 §2.1 NAT64
    ("2002:7f00:1::1", "loopback"), ("2002:a9fe:a9fe::", "metadata"),  # RFC 3056 §2 6to4
    ("::ffff:8.8.8.8", None), ("64:ff9b::8.8.8.8", None), ("2002:808:808::1", None),
    ("2606:4700:4700::1111", None), ("2a00:1450:4001::1", None), ("2001:4860:4860::8888", None),
]


@pytest.mark.parametrize("address,kind", ADDRESSES, ids=[a for a, _ in ADDRESSES])
def test_every_special_purpose_block_is_refused_and_public_addresses_are_not(address: str, kind: str | None) -> None:
    found = classify(ipaddress.ip_address(address))
    if kind is None:
        assert found is None
    else:
        assert found is not None and kind in found


ODD_SPELLINGS = ["2130706433", "0x7f.1", "0177.0.0.1", "127.1", "0x7f000001", "017700000001", "127.0.1",
                 "0x7F.0.0.1", "0177.1", "192.168.257", "0xa9.0xfe.0xa9.0xfe", "0", "10.0x10000"]


@pytest.mark.parametrize("host", ODD_SPELLINGS)
def test_a_number_in_any_form_inet_aton_accepts_is_that_address(host: str) -> None:
    assert literal_address(host) == ipaddress.IPv4Address(socket.inet_aton(host))


@pytest.mark.parametrize("host", ["example.com", "4294967296", "1.2.3.4.5", "08.0.0.1", "0x100.0.0.1",
                                  "256.1.1.1", "1.2.3.0x", "127.0.0.1x", "", "a.1"])
def test_what_is_no_ipv4_number_is_a_name(host: str) -> None:
    with pytest.raises(OSError):
        socket.inet_aton(host)
    assert literal_address(host) is None


@pytest.mark.parametrize("url,message", [
    ("http://127.0.0.1/", "refused: 127.0.0.1 is a loopback address; allow it with CHIME_EGRESS_ALLOW"),
    ("http://2130706433/", "refused: 2130706433 is 127.0.0.1, a loopback address; allow it with CHIME_EGRESS_ALLOW"),
    ("http://0x7f.1:8080/", "refused: 0x7f.1 is 127.0.0.1, a loopback address; allow it with CHIME_EGRESS_ALLOW"),
    ("http://[::ffff:127.0.0.1]/", "refused: ::ffff:127.0.0.1 is a loopback address (127.0.0.1) inside an IPv6 "
                                   "address; allow it with CHIME_EGRESS_ALLOW"),
    ("http://169.254.169.254/latest/meta-data/", "refused: 169.254.169.254 is a cloud metadata address; allow it "
                                                 "by listing 169.254.169.254/32 alone in CHIME_EGRESS_ALLOW"),
    ("https://10.0.0.5/", "refused: 10.0.0.5 is a private address; allow it with CHIME_EGRESS_ALLOW"),
    ("http://[fe80::1%25eth0]/", "refused: fe80::1%25eth0 is a link-local address; allow it with CHIME_EGRESS_ALLOW"),
])
def test_a_refused_literal_address_is_refused_when_the_task_is_saved(
        url: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(egress.ALLOW_ENV, raising=False)
    with pytest.raises(ArgsError) as caught:
        registry.validate_args("http_request", {"url": url})
    assert caught.value.fields == {"url": message}


def test_names_are_left_to_run_time_when_the_task_is_saved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(egress.ALLOW_ENV, raising=False)
    assert registry.validate_args("http_request", {"url": "http://localhost:8080/"})["url"]


def test_the_allow_list_takes_networks_and_host_names() -> None:
    allow = parse_allow_list(" 10.0.0.0/8, internal.Example.com. ,fd00::/8,192.0.2.7,, ")
    assert allow == AllowList((ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"),
                               ipaddress.ip_network("192.0.2.7/32")), frozenset({"internal.example.com"}))
    assert refusal(ipaddress.ip_address("10.9.8.7"), allow) is None
    assert refusal(ipaddress.ip_address("::ffff:10.9.8.7"), allow) is None
    assert refusal(ipaddress.ip_address("192.168.1.1"), allow, "internal.example.com") is None
    assert refusal(ipaddress.ip_address("192.168.1.1"), allow, "other.example.com") is not None
    assert refusal(ipaddress.ip_address("172.16.0.1"), allow) is not None


def test_a_metadata_address_is_allowed_only_when_listed_alone() -> None:
    metadata = ipaddress.ip_address("169.254.169.254")
    assert refusal(metadata, parse_allow_list("169.254.0.0/16")) is not None
    assert refusal(metadata, parse_allow_list("0.0.0.0/0")) is not None
    assert refusal(metadata, AllowList(hosts=frozenset({"metadata.google.internal"})),
                   "metadata.google.internal") is not None
    assert refusal(ipaddress.ip_address("169.254.1.1"), parse_allow_list("169.254.0.0/16")) is None
    assert refusal(metadata, parse_allow_list("169.254.169.254")) is None


@pytest.mark.parametrize("text", ["10.0.0.0/33", "exa mple.com", "http://x", "10.0.0.0/8;x", "2130706433", "-a.com"])
def test_a_malformed_allow_list_stops_the_app_from_starting(text: str) -> None:
    with pytest.raises(ValueError, match="CHIME_EGRESS_ALLOW"):
        parse_allow_list(text)
    with pytest.raises(ConfigError, match="CHIME_EGRESS_ALLOW"):
        settings_from_env({"CHIME_EGRESS_ALLOW": text}, "/tmp")


# --------------------------------------------------------------------------- the job on a real server


class _Handler(BaseHTTPRequestHandler):
    """/to?url=U redirects (302) to U; /loop redirects to itself; /see-other and /temporary redirect a
    POST with 303 and 307 to /echo; everything else answers 200 with the request line and Host."""

    seen: list[dict[str, Any]] = []

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
        if self.path.startswith("/to?url="):
            return self._redirect(302, self.path.removeprefix("/to?url="))
        if self.path == "/loop":
            return self._redirect(302, "/loop")
        if self.path in ("/see-other", "/temporary"):
            return self._redirect(303 if self.path == "/see-other" else 307, "/echo")
        payload = f"{self.command} {self.path} host={self.headers.get('Host')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _redirect(self, status: int, location: str) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A server on 127.0.0.1, which the test allows explicitly (loopback is refused by default)."""
    for variable in PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(egress.ALLOW_ENV, "127.0.0.1/32")
    _Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def run(url: str, **args: Any) -> dict[str, Any]:
    return registry.run("http_request", {"url": url, "timeout_seconds": 5, **args})


def test_an_allowed_address_is_reached(server: str) -> None:
    assert run(f"{server}/hello")["body"].startswith("GET /hello")


@pytest.mark.parametrize("location,message", [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
    ("http://10.0.0.1:6379/", "10.0.0.1 is a private address"),
    ("http://2130706434:22/", "2130706434 is 127.0.0.2, a loopback address"),
    ("http://127.0.0.2/", "127.0.0.2 is a loopback address"),
    ("http://[::ffff:192.168.0.1]/", "::ffff:192.168.0.1 is a private address (192.168.0.1) inside an IPv6 address"),
])
def test_a_redirect_to_a_refused_address_fails_the_run_saying_why(server: str, location: str, message: str) -> None:
    with pytest.raises(EgressRefusedError) as caught:
        run(f"{server}/to?url={location}")
    assert str(caught.value) == f"refused: {message}; allow it " + (
        "by listing 169.254.169.254/32 alone in CHIME_EGRESS_ALLOW" if "metadata" in message
        else "with CHIME_EGRESS_ALLOW")
    assert [seen["path"] for seen in _Handler.seen] == [f"/to?url={location}"]


@pytest.mark.parametrize("location", ["ftp://example.com/file", "file:///etc/passwd", "gopher://example.com/"])
def test_a_redirect_to_another_scheme_is_refused(server: str, location: str) -> None:
    with pytest.raises(EgressRefusedError, match=f"redirects to {location}; only http and https are followed"):
        run(f"{server}/to?url={location}")


def test_a_redirect_loop_stops_after_five_redirects(server: str) -> None:
    assert MAX_REDIRECTS == 5
    with pytest.raises(HttpRequestError, match="stopped after 5 redirects"):
        run(f"{server}/loop")
    assert len(_Handler.seen) == 6  # the request and five redirects


def test_a_short_chain_of_redirects_is_followed(server: str) -> None:
    result = run(f"{server}/to?url=/to?url={server}/end")
    assert result["status_code"] == 200
    assert result["body"].startswith("GET /end")


def test_see_other_turns_a_post_into_a_get_and_temporary_keeps_it(server: str) -> None:
    assert run(f"{server}/see-other", method="POST", json={"a": 1})["body"].startswith("GET /echo")
    assert run(f"{server}/temporary", method="POST", json={"a": 1})["body"].startswith("POST /echo")
    assert _Handler.seen[-1]["body"] == '{"a": 1}'


def test_credentials_do_not_follow_a_redirect_to_another_origin(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real_getaddrinfo = socket.getaddrinfo

    def other_origin_is_this_server(host: str, *args: Any, **kwargs: Any) -> Any:
        # "localhost" would do, but a fresh Debian resolves it to ::1 first, where the server is not.
        return real_getaddrinfo("127.0.0.1" if host == "other.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", other_origin_is_this_server)
    other = server.replace("127.0.0.1", "other.test")  # same server, another origin
    run(f"{server}/to?url={other}/end", headers={"Authorization": "Bearer secret", "X-Keep": "yes"})
    first, second = _Handler.seen
    assert first["headers"]["Authorization"] == "Bearer secret"
    assert "Authorization" not in second["headers"] and second["headers"]["X-Keep"] == "yes"


def test_a_name_that_resolves_to_a_refused_address_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(egress.ALLOW_ENV, raising=False)
    with pytest.raises(EgressRefusedError, match="refused: localhost resolves to (127.0.0.1|::1), a loopback address; "
                                                 "allow it with CHIME_EGRESS_ALLOW"):
        run("http://localhost:9/")


def test_the_connection_goes_to_the_vetted_address_even_if_the_name_rebinds(
        server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The name is resolved once per hop; the connection is pinned to that answer, Host keeps the name."""
    port = int(server.rsplit(":", 1)[1])
    answers = iter(["127.0.0.1", "169.254.169.254", "169.254.169.254"])
    asked: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host: str, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return real_getaddrinfo(host, *args, **kwargs)
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    result = run(f"http://rebind.test:{port}/pinned")
    assert result["body"] == f"GET /pinned host=rebind.test:{port}"
    assert asked == ["rebind.test"]


@pytest.fixture
def tls_server(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 with a certificate for chime.test only, trusted through SSL_CERT_FILE."""
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=chime.test",
                    "-addext", "subjectAltName=DNS:chime.test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    _Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    real_getaddrinfo = socket.getaddrinfo

    def local(host: str, *args: Any, **kwargs: Any) -> Any:
        return real_getaddrinfo("127.0.0.1" if host.endswith(".test") else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local)
    monkeypatch.setenv(egress.ALLOW_ENV, "chime.test,other.test")
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_https_to_a_pinned_address_still_checks_the_certificate_against_the_name(tls_server: int) -> None:
    assert run(f"https://chime.test:{tls_server}/tls")["body"] == f"GET /tls host=chime.test:{tls_server}"
    with pytest.raises(HttpRequestError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        run(f"https://other.test:{tls_server}/tls")
