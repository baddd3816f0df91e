"""MQTT 5 enhanced authentication (section 4.12) in the broker core: every branch, bytes in and out.

The method here is a test double of the plugin interface (a fixed challenge/response), so the
tests are about the broker's AUTH state machine; the real SCRAM-SHA-256 method has its own tests.
"""

from __future__ import annotations

from m2mhub.auth.enhanced import Continue, Fail, Step, Success
from m2mhub.mqtt.packets import Auth, Connack, Disconnect, Publish, Will
from tests.hub.harness import Client, Hub

METHOD = 0x15
DATA = 0x16
REASON = 0x1F


class _Exchange:
    def __init__(self, log: list[tuple[str, bytes | None]], reauth: bool) -> None:
        self.log = log
        self.reauth = reauth
        self.challenged = False

    def step(self, data: bytes | None) -> Step:
        self.log.append(("re" if self.reauth else "first", data))
        if not self.challenged:
            if data == b"fast":
                return Success(b"fast-ok", username="fast-user")
            self.challenged = True
            return Continue(b"challenge")
        if data == b"response":
            return Success(b"welcome", username="alice")
        if data == b"wrong-user":
            return Fail("no such user", 0x86)
        return Fail("wrong response")


class ChallengeMethod:
    """Challenge "challenge", expected response "response" (or "fast" up front)."""

    name = "X-CHALLENGE"

    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes | None]] = []
        self.starts: list[tuple[str, str | None, bool]] = []

    def start(self, client_id: str, username: str | None, reauthenticating: bool) -> _Exchange:
        self.starts.append((client_id, username, reauthenticating))
        return _Exchange(self.seen, reauthenticating)


def _hub() -> tuple[Hub, ChallengeMethod]:
    hub = Hub()
    method = ChallengeMethod()
    hub.broker.add_auth_method(method)
    return hub, method


def _auth(code: int, data: bytes | None, method: str = ChallengeMethod.name) -> Auth:
    props: dict[int, object] = {METHOD: method}
    if data is not None:
        props[DATA] = data
    return Auth(code, props)


def _start(hub: Hub, client_id: str = "a", data: bytes = b"hello", **kw: object) -> Client:
    c = hub.client(client_id, level=5)
    props = {METHOD: ChallengeMethod.name, DATA: data, **kw.pop("properties", {})}  # type: ignore[dict-item]
    first = c.connect(properties=props, **kw)  # type: ignore[arg-type]
    assert first == _auth(0x18, b"challenge"), first
    return c


def _authenticated(hub: Hub, client_id: str = "a", **kw: object) -> Client:
    c = _start(hub, client_id, **kw)
    c.send(_auth(0x18, b"response"))
    (ack,) = c.received()
    assert isinstance(ack, Connack) and ack.reason_code == 0, ack
    return c


def test_unknown_method_gets_bad_authentication_method() -> None:
    hub = Hub()
    c = hub.client("a", level=5)
    ack = c.connect(properties={METHOD: "foo"})
    assert isinstance(ack, Connack) and ack.reason_code == 0x8C
    assert ack.properties == {REASON: "authentication method 'foo' is not supported"}
    assert c.closed
    # mosquitto 2.0.11's two lines for this refusal, word for word.
    assert hub.lines[-2:] == [
        "Sending CONNACK to a (0, 140)",
        "Client <unknown> disconnected due to QoS too high or retain not supported.",
    ]


def test_challenge_response_then_connack_with_method_and_data() -> None:
    hub, method = _hub()
    c = _start(hub)
    assert not c.closed and c.conn.client_id is None  # not connected until CONNACK
    c.send(_auth(0x18, b"response"))
    (ack,) = c.received()
    assert ack == Connack(False, 0, ack.properties)
    assert ack.properties[METHOD] == "X-CHALLENGE" and ack.properties[DATA] == b"welcome"
    assert method.seen == [("first", b"hello"), ("first", b"response")]
    assert method.starts == [("a", None, False)]
    peer = c.conn.peer
    assert hub.lines[-5:] == [
        "Sending AUTH to a (rc24, X-CHALLENGE)",
        "Received AUTH from a (rc24, X-CHALLENGE)",
        f"New client connected from {peer} as a (p5, c1, k60, u'alice').",
        "No will message specified.",
        "Sending CONNACK to a (0, 0)",
    ]
    # A working client now: its own message comes back.
    c.subscribe(("t", 0))
    assert [p.payload for p in c.publish("t", b"x") if isinstance(p, Publish)] == [b"x"]


def test_success_in_one_step_and_the_methods_user_name() -> None:
    hub, _ = _hub()
    c = hub.client("a", level=5)
    ack = c.connect(username="given", properties={METHOD: "X-CHALLENGE", DATA: b"fast"})
    assert isinstance(ack, Connack) and ack.reason_code == 0
    assert ack.properties[DATA] == b"fast-ok"
    assert c.conn.username == "fast-user"


def test_wrong_response_is_not_authorized() -> None:
    hub, _ = _hub()
    c = _start(hub)
    c.send(_auth(0x18, b"guess"))
    assert c.received() == [Connack(False, 0x87, {REASON: "wrong response"})]
    assert c.closed
    assert hub.lines[-2:] == [
        "Sending CONNACK to a (0, 135)",
        f"Client <unknown> ({c.conn.peer}) disconnected, not authorised.",
    ]


def test_method_chooses_bad_user_name_or_password() -> None:
    hub, _ = _hub()
    c = _start(hub)
    c.send(_auth(0x18, b"wrong-user"))
    assert c.received() == [Connack(False, 0x86, {REASON: "no such user"})]


def test_refused_client_takes_over_nothing_and_sends_no_will() -> None:
    hub, _ = _hub()
    watcher = hub.connected("w")
    watcher.subscribe(("will/#", 0))
    old = _authenticated(hub, "a")
    c = _start(hub, "a", will=Will("will/a", b"gone"))
    c.send(_auth(0x18, b"guess"))
    assert c.closed and not old.closed
    assert watcher.received() == []


def test_method_mismatch_during_authentication_is_a_protocol_error() -> None:
    hub, _ = _hub()
    c = _start(hub)
    c.send(_auth(0x18, b"response", method="OTHER"))
    (ack,) = c.received()
    assert isinstance(ack, Connack) and ack.reason_code == 0x82
    assert c.closed
    assert (
        "disconnected due to protocol error (AUTH with authentication method 'OTHER'"
        in (hub.lines[-1])
    )


def test_reauthenticate_code_before_connack_is_a_protocol_error() -> None:
    hub, _ = _hub()
    c = _start(hub)
    c.send(_auth(0x19, b"response"))
    (ack,) = c.received()
    assert isinstance(ack, Connack) and ack.reason_code == 0x82


def test_other_packets_during_authentication_are_a_protocol_error() -> None:
    hub, _ = _hub()
    c = _start(hub)
    c.send(Publish("t", b"early"))
    (ack,) = c.received()
    assert isinstance(ack, Connack) and ack.reason_code == 0x82
    assert c.closed


def test_second_connect_during_authentication_is_a_protocol_error() -> None:
    hub, _ = _hub()
    c = _start(hub)
    ack = c.connect(properties={METHOD: "X-CHALLENGE", DATA: b"fast"})
    assert isinstance(ack, Connack) and ack.reason_code == 0x82


def test_disconnect_during_authentication_just_closes() -> None:
    hub, _ = _hub()
    c = _start(hub)
    c.send(Disconnect())
    assert c.closed and c.received() == []
    assert hub.lines[-1] == f"Client <unknown> ({c.conn.peer}) disconnected."


def test_auth_before_connect_closes_without_answer() -> None:
    hub, _ = _hub()
    c = hub.client("a", level=5)
    c.send(_auth(0x18, b"response"))
    assert c.closed and c.received() == []
    assert hub.lines[-1].endswith(
        "disconnected due to protocol error (first packet is not CONNECT)."
    )


def test_auth_with_unknown_reason_code() -> None:
    hub, _ = _hub()
    raw_auth = bytes((0xF0, 0x02, 0x05, 0x00))  # reason code 0x05 does not exist for AUTH
    during = _start(hub, "during")
    during.send_bytes(raw_auth)
    (ack,) = during.received()
    assert isinstance(ack, Connack) and ack.reason_code == 0x82
    after = _authenticated(hub, "after")
    after.send_bytes(raw_auth)
    (disconnect,) = after.received()
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == 0x82
    assert disconnect.properties[REASON] == "invalid AUTH reason code 0x05"


def test_auth_success_code_from_client_is_a_protocol_error() -> None:
    hub, _ = _hub()
    c = _authenticated(hub)
    c.send(_auth(0x00, None))
    (disconnect,) = c.received()
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == 0x82


def test_auth_from_client_that_used_no_method_is_a_protocol_error() -> None:
    hub, method = _hub()
    c = hub.connected("plain", level=5)
    c.send(_auth(0x19, b"hello"))
    (disconnect,) = c.received()
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == 0x82
    assert c.closed and method.starts == []
    assert hub.lines[-1] == (
        "Client plain disconnected due to protocol error "
        "(AUTH from a client that did not name an authentication method)."
    )


def test_reauthentication_success() -> None:
    hub, method = _hub()
    c = _authenticated(hub)
    c.send(_auth(0x19, b"again"))
    assert c.received() == [_auth(0x18, b"challenge")]
    # The client may go on working while re-authenticating.
    c.subscribe(("t", 0))
    c.send(_auth(0x18, b"response"))
    assert c.received() == [_auth(0x00, b"welcome")]
    assert method.starts[-1] == ("a", "alice", True)  # the identity the first exchange set
    assert [p.payload for p in c.publish("t", b"x") if isinstance(p, Publish)] == [b"x"]
    assert "Received AUTH from a (rc25, X-CHALLENGE)" in hub.lines


def test_reauthentication_failure_disconnects_with_not_authorized_and_sends_will() -> None:
    hub, _ = _hub()
    watcher = hub.connected("w")
    watcher.subscribe(("will/#", 0))
    c = _authenticated(hub, will=Will("will/a", b"gone"))
    c.send(_auth(0x19, b"again"))
    c.received()
    c.send(_auth(0x18, b"guess"))
    assert c.received() == [Disconnect(0x87, {REASON: "wrong response"})]
    assert c.closed
    assert [p.payload for p in watcher.publishes()] == [b"gone"]
    assert "Client a disconnected, not authorised." in hub.lines


def test_reauthentication_with_another_method_is_a_protocol_error() -> None:
    hub, _ = _hub()
    c = _authenticated(hub)
    c.send(_auth(0x19, b"again", method="OTHER"))
    (disconnect,) = c.received()
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == 0x82


def test_second_reauthenticate_during_one_is_a_protocol_error() -> None:
    hub, _ = _hub()
    c = _authenticated(hub)
    c.send(_auth(0x19, b"again"))
    c.received()
    c.send(_auth(0x19, b"again"))
    (disconnect,) = c.received()
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == 0x82


def test_no_reason_strings_when_the_client_asks_for_no_problem_information() -> None:
    hub, _ = _hub()
    c = _start(hub, properties={0x17: 0})
    c.send(_auth(0x18, b"guess"))
    assert c.received() == [Connack(False, 0x87, {})]
    unknown = hub.client("b", level=5)
    ack = unknown.connect(properties={METHOD: "foo", 0x17: 0})
    assert ack == Connack(False, 0x8C, {})
    bad = hub.connected("bad", level=5, properties={0x17: 0})
    bad.send(_auth(0x19, b"x"))
    assert bad.received() == [Disconnect(0x82, {})]


def test_reauthentication_failure_code_that_disconnect_cannot_carry_becomes_0x87() -> None:
    hub, _ = _hub()
    c = _authenticated(hub)
    c.send(_auth(0x19, b"again"))
    c.received()
    c.send(_auth(0x18, b"wrong-user"))  # the method says 0x86, valid only in CONNACK
    assert c.received() == [Disconnect(0x87, {REASON: "no such user"})]
