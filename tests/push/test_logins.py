"""Device logins on loaxa's broker: made with the token, scoped to the device's own topics,
dropped with the token; the broker enforces it (Mosquitto's dynamic-security plugin)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import unit_of_work
from app.push import publisher as publisher_module
from app.push import topics
from app.push.models import PushLogin, PushOutbox
from tests.helpers import make_station, staff
from tests.push.conftest import Broker, Client, wait_for


def _device(client: TestClient, admin: dict[str, str], station_id: int, village_id: int | None):  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/devices",
        json={"name": "PC", "station_id": station_id, "village_id": village_id},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["token"]


def _login_made(device_id: int) -> bool:
    with unit_of_work(write=False) as session:
        return session.get(PushLogin, device_id) is not None


def test_push_answer_and_the_login_made_with_the_token(
    client: TestClient, push: publisher_module.Publisher, broker: Broker
) -> None:
    ids = make_station(villages=1)
    h = staff(client, ids["station_id"])
    village = ids["village_ids"][0]
    device_id, token = _device(client, h["admin"], ids["station_id"], village)
    wait_for(lambda: _login_made(device_id), 10, "the login made at token issue")

    r = client.get("/api/v1/playout/push", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["url"] == f"mqtt://127.0.0.1:{broker.port}"
    assert body["username"] == f"device-{device_id}"
    sid = ids["station_id"]
    assert body["topics"] == [
        f"loaxa/v1/stations/{sid}/alert",
        f"loaxa/v1/stations/{sid}/playlist",
        f"loaxa/v1/stations/{sid}/villages/{village}/playlist",
        f"loaxa/v1/stations/{sid}/devices/{device_id}",
    ]
    assert client.get("/api/v1/playout/push").status_code == 401

    device = Client(broker.port, body["username"], token)
    try:
        assert device.connect()
        for topic in body["topics"]:
            assert device.subscribe(topic), topic
    finally:
        device.close()


def test_a_device_reads_only_its_own_topics_and_publishes_nothing(
    client: TestClient, push: publisher_module.Publisher, broker: Broker
) -> None:
    one = make_station(villages=1)
    two = make_station(name="Xuân Lâm", villages=0)
    h = staff(client, one["station_id"])
    a_id, a_token = _device(client, h["admin"], one["station_id"], None)
    b_id, _ = _device(client, h["admin"], two["station_id"], None)
    wait_for(lambda: _login_made(a_id) and _login_made(b_id), 10, "both logins")

    # Another device's login with this one's token, or a wrong password: refused.
    assert not Client(broker.port, f"device-{b_id}", a_token).connect()
    assert not Client(broker.port, f"device-{a_id}", "dev_wrong").connect()
    assert not Client(broker.port, "", "").connect()  # no anonymous clients

    watcher = Client(broker.port, "loaxa", broker.password)  # loaxa's admin login
    a = Client(broker.port, f"device-{a_id}", a_token)
    try:
        assert watcher.connect() and watcher.subscribe("loaxa/#")
        assert a.connect()
        assert a.subscribe(topics.alert_topic(one["station_id"]))
        assert not a.subscribe(topics.alert_topic(two["station_id"]))
        assert not a.subscribe(f"loaxa/v1/stations/{two['station_id']}/#")
        assert not a.subscribe("loaxa/#")
        assert not a.subscribe("#")
        assert not a.subscribe(topics.device_topic(two["station_id"], b_id))
        assert not a.subscribe("$CONTROL/dynamic-security/v1/response")
        # Publishing anything, even on its own topic: the broker drops it.
        a.mqtt.publish(topics.alert_topic(one["station_id"]), b'{"v":1}', qos=1).wait_for_publish(5)
        a.mqtt.publish("$CONTROL/dynamic-security/v1", b'{"commands":[]}', qos=1)
        # loaxa's own message on the same topic does arrive, after which nothing else did.
        watcher.mqtt.publish(topics.alert_topic(one["station_id"]), b"loaxa", qos=1)
        wait_for(lambda: a.messages and watcher.messages, 5, "loaxa's message")
        assert [m.payload for m in watcher.messages] == [b"loaxa"]
        assert [m.payload for m in a.messages] == [b"loaxa"]
    finally:
        a.close()
        watcher.close()


def test_a_revoked_device_is_refused_and_cut_off(
    client: TestClient, push: publisher_module.Publisher, broker: Broker
) -> None:
    ids = make_station(villages=0)
    h = staff(client, ids["station_id"])
    device_id, token = _device(client, h["admin"], ids["station_id"], None)
    wait_for(lambda: _login_made(device_id), 10, "the login")
    connected = Client(broker.port, f"device-{device_id}", token)
    assert connected.connect()
    assert connected.subscribe(topics.device_topic(ids["station_id"], device_id))

    r = client.post(f"/api/v1/devices/{device_id}/revoke", headers=h["admin"])
    assert r.status_code == 200, r.text

    def sent() -> bool:
        with unit_of_work(write=False) as session:
            rows = session.scalars(select(PushOutbox)).all()
            return bool(rows) and all(row.sent_at is not None for row in rows)

    wait_for(sent, 10, "the logout sent")
    assert not _login_made(device_id)
    # Told on its own topic, then cut off; connecting again is refused.
    wait_for(lambda: connected.disconnected.is_set(), 5, "the connection dropped")
    assert any(b'"kind":"token"' in m.payload for m in connected.messages)
    connected.close()
    again = Client(broker.port, f"device-{device_id}", token)
    assert not again.connect()
    assert (
        client.get("/api/v1/playout/push", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )


def test_an_older_device_gets_its_login_when_it_asks(
    client: TestClient, broker: Broker, push: publisher_module.Publisher
) -> None:
    ids = make_station(villages=0)
    h = staff(client, ids["station_id"])
    device_id, token = _device(client, h["admin"], ids["station_id"], None)
    wait_for(lambda: _login_made(device_id), 10, "the login")
    # As if made before push: no login on the broker, none recorded.
    with unit_of_work() as session:
        session.query(PushLogin).delete()
    push._control(lambda corr: publisher_module.logout_commands(device_id, corr))
    assert not Client(broker.port, f"device-{device_id}", token).connect()

    r = client.get("/api/v1/playout/push", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert _login_made(device_id)
    device = Client(broker.port, f"device-{device_id}", token)
    assert device.connect()
    device.close()


def test_push_off_says_404(client: TestClient) -> None:
    ids = make_station(villages=0)
    h = staff(client, ids["station_id"])
    _, token = _device(client, h["admin"], ids["station_id"], None)
    r = client.get("/api/v1/playout/push", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 404 and "poll" in r.json()["detail"]


def test_readyz_warns_when_the_broker_is_away_and_metrics_count(
    client: TestClient, push: publisher_module.Publisher, broker: Broker
) -> None:
    ids = make_station(villages=0)
    h = staff(client, ids["station_id"])
    device_id, token = _device(client, h["admin"], ids["station_id"], None)
    wait_for(lambda: _login_made(device_id), 10, "the login")
    client.get(
        "/api/v1/playout/emergencies",
        headers={"Authorization": f"Bearer {token}", "X-Loaxa-Push": "connected"},
    )
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["push_broker"] == "ok"
    text = client.get("/metrics").text
    assert 'loaxa_push_logins_total{outcome="made"}' in text
    assert 'loaxa_push_devices{state="connected"} 1.0' in text
    assert "loaxa_push_broker_up 1.0" in text

    broker.stop()
    wait_for(lambda: not push.connected, 10, "the publisher to notice")
    # A change devices must learn (a revoke) still succeeds; its messages wait in the outbox.
    revoked = client.post(f"/api/v1/devices/{device_id}/revoke", headers=h["admin"])
    assert revoked.status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200, "a warning, not a failure"
    assert ready.json()["push_broker"] == "unreachable" and ready.json()["warnings"]
    text = client.get("/metrics").text
    assert "loaxa_push_broker_up 0.0" in text
    assert "loaxa_push_outbox_pending 2.0" in text  # the token message and the logout
    broker.start()
    wait_for(lambda: push.connected, 15, "the publisher back")

    def sent() -> bool:
        with unit_of_work(write=False) as session:
            return all(r.sent_at for r in session.scalars(select(PushOutbox)))

    wait_for(sent, 15, "the outbox sent after the broker came back")
