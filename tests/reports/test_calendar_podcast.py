"""The schedule as iCalendar and the CCHC column as a podcast."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar

from app.config import get_settings
from app.db import unit_of_work
from app.schedule import service as schedule
from app.schedule.models import Broadcast
from tests.reports.conftest import DEC_SCRIPT, local


def ics_events(client: TestClient, station_id: int, headers: dict[str, str], **params: Any):
    r = client.get(f"/api/v1/stations/{station_id}/schedule.ics", headers=headers, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/calendar; charset=utf-8"
    cal = Calendar.from_ical(r.content)
    return r, {str(e["UID"]): e for e in cal.walk("VEVENT")}


def test_calendar(client: TestClient, year: dict[str, Any], headers: dict[str, Any]) -> None:
    sid, ids = year["station_id"], year["broadcasts"]
    first, events = ics_events(client, sid, headers["viewer"])
    again, same = ics_events(client, sid, headers["viewer"])
    assert first.content == again.content
    assert list(events) == list(same)
    assert len(events) == 12 + 7  # the CCHC column (the cancelled one too) and village slots
    assert f"broadcast-{ids['other_mar']}@loaxa" not in events
    cal = Calendar.from_ical(first.content)
    assert str(cal["VERSION"]) == "2.0"
    assert "Xuân Phúc" in str(cal["X-WR-CALNAME"])

    jan = events[f"broadcast-{ids['jan']}@loaxa"]
    assert str(jan["SUMMARY"]) == "Chuyên mục Cải cách hành chính"
    assert jan.decoded("DTSTART") == datetime(2024, 1, 20, 10, 0, tzinfo=UTC)
    assert jan.decoded("DTEND") - jan.decoded("DTSTART") == timedelta(seconds=2)  # its master
    assert str(jan["STATUS"]) == "CONFIRMED"
    assert "Trạng thái: đã phát (aired)" in str(jan["DESCRIPTION"])
    assert b"DTSTART:20240120T100000Z" in first.content  # UTC, not floating

    october = events[f"broadcast-{ids['oct']}@loaxa"]
    # No master yet: the programme's minimum window.
    assert october.decoded("DTEND") - october.decoded("DTSTART") == timedelta(minutes=10)
    assert "đã lên lịch (planned)" in str(october["DESCRIPTION"])

    cancelled = events[f"broadcast-{ids['nov_cancelled']}@loaxa"]
    assert str(cancelled["STATUS"]) == "CANCELLED"
    assert str(cancelled["SUMMARY"]).startswith("Đã hủy: ")

    village = [e for e in events.values() if "Thôn 1" in str(e["SUMMARY"])]
    assert len(village) == 4
    assert str(village[0]["SUMMARY"]) == "Tuyên truyền CCHC trên loa phát thanh các thôn – Thôn 1"
    assert str(village[0]["LOCATION"]) == "Thôn 1"

    # Moving October's broadcast keeps its UID and raises its SEQUENCE.
    before = int(october["SEQUENCE"])
    with unit_of_work() as s:
        broadcast = schedule.get_broadcast(s, ids["oct"], for_update=True)
        schedule.move_broadcast(s, broadcast=broadcast, starts_at=local("2024-10-26"))
    _r, moved = ics_events(client, sid, headers["viewer"])
    assert list(moved) == list(events)
    after = moved[f"broadcast-{ids['oct']}@loaxa"]
    assert int(after["SEQUENCE"]) > before
    assert after.decoded("DTSTART") == datetime(2024, 10, 26, 10, 0, tzinfo=UTC)

    _r, none = ics_events(client, sid, headers["viewer"], year=2025)
    assert none == {}


def test_calendar_access(client: TestClient, year: dict[str, Any], headers: dict[str, Any]) -> None:
    url = f"/api/v1/stations/{year['station_id']}/schedule.ics"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=headers["stranger"]).status_code == 404
    assert client.get(url, headers=headers["admin"]).status_code == 200
    assert (
        client.get("/api/v1/stations/999999/schedule.ics", headers=headers["admin"]).status_code
        == 404
    )
    r = client.get(url, headers=headers["viewer"], params={"year": "twenty"})
    assert r.status_code == 422 and r.json()["detail"].startswith("year:")


def feed(client: TestClient, station_id: int) -> Any:
    r = client.get(f"/api/v1/stations/{station_id}/podcast.xml")  # no token: it is public
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/rss+xml; charset=utf-8"
    return r


def test_podcast(
    client: TestClient, year: dict[str, Any], master_mp3: Path, database_url: str
) -> None:
    sid, ids = year["station_id"], year["broadcasts"]
    r = feed(client, sid)
    parsed = feedparser.parse(r.content)
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.version == "rss20"
    assert parsed.feed.title == "Chuyên mục Cải cách hành chính – Đài truyền thanh xã Xuân Phúc"
    assert parsed.feed.language == "vi"
    months = [12, 11, 8, 7, 5, 4, 3, 1]  # aired, newest first
    assert [e.title for e in parsed.entries] == [
        f"Chuyên mục Cải cách hành chính tháng {m}/2024" for m in months
    ]
    order = ["dec", "nov", "aug", "jul", "may", "apr", "mar", "jan"]
    assert [e.id for e in parsed.entries] == [
        f"loaxa:station:{sid}:broadcast:{ids[k]}" for k in order
    ]
    assert [e.id for e in feedparser.parse(feed(client, sid).content).entries] == [
        e.id for e in parsed.entries
    ]
    dec = parsed.entries[0]
    assert dec.published == "Sat, 21 Dec 2024 10:00:00 GMT"
    assert dec.published_parsed[:5] == (2024, 12, 21, 10, 0)
    (enclosure,) = dec.enclosures
    assert enclosure.href == f"http://testserver/api/v1/stations/{sid}/podcast/{ids['dec']}.mp3"
    assert enclosure.type == "audio/mpeg"
    audio = master_mp3.read_bytes()
    assert int(enclosure.length) == len(audio)
    assert "Công khai chỉ số" in dec.summary
    assert dec.itunes_duration == "00:00:02"

    # Every enclosure really downloads the MP3, without a token.
    for entry in parsed.entries:
        got = client.get(entry.enclosures[0].href)
        assert got.status_code == 200, entry.title
        assert got.headers["content-type"] == "audio/mpeg"
        assert got.content == audio
    head = client.head(enclosure.href)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(audio)
    assert head.headers["accept-ranges"] == "bytes"
    part = client.get(enclosure.href, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.content == audio[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(audio)}"

    # The scripts are escaped, not dropped: the XML gives them back exactly.
    assert b"&amp;" in r.content and b"&lt;tr\xe1\xbb\xb1c tuy\xe1\xba\xbfn&gt;" in r.content
    root = ET.fromstring(r.content)
    first = root.find("channel/item")
    assert first is not None
    assert first.findtext("description") == f"Công khai chỉ số\n{DEC_SCRIPT}"
    jan = root.findall("channel/item")[-1]
    assert jan.findtext("description") == (
        "Kết quả CCHC quý I\nTình hình thực hiện CCHC.\n\n"
        "Chỉ số PAR INDEX\nKết quả PAR INDEX, PAPI, SIPAS, PCI."
    )


def test_podcast_publishes_only_aired_cchc(
    client: TestClient, year: dict[str, Any], database_url: str
) -> None:
    sid, other, ids = year["station_id"], year["other_station_id"], year["broadcasts"]
    with unit_of_work() as s:
        # Aired, but its master is not in the store: left out rather than a broken link.
        april = s.get(Broadcast, ids["apr"])
        assert april is not None
        april.master_sha256 = "ab" * 32
    entries = feedparser.parse(feed(client, sid).content).entries
    assert len(entries) == 7
    assert f"/podcast/{ids['apr']}.mp3" not in str([e.enclosures for e in entries])

    def episode(station: int, broadcast: int) -> int:
        return client.get(f"/api/v1/stations/{station}/podcast/{broadcast}.mp3").status_code

    assert episode(sid, ids["dec"]) == 200
    assert episode(sid, ids["apr"]) == 404  # file missing
    assert episode(sid, ids["oct"]) == 404  # planned
    assert episode(sid, ids["jun"]) == 404  # assembled, never aired
    assert episode(sid, ids["nov_cancelled"]) == 404
    assert episode(sid, ids["other_mar"]) == 404  # another station's
    assert episode(other, ids["dec"]) == 404  # under another station's path
    assert episode(other, ids["other_mar"]) == 200
    assert episode(sid, 999_999) == 404
    assert client.get("/api/v1/stations/999999/podcast.xml").status_code == 404
    other_feed = feedparser.parse(feed(client, other).content)
    assert [e.title for e in other_feed.entries] == ["Chuyên mục Cải cách hành chính tháng 3/2024"]


@pytest.fixture
def public_base_url(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[str]:
    url = "https://xuanphuc.example.vn/loa/"
    monkeypatch.setenv("LOAXA_PUBLIC_BASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_podcast_uses_the_public_base_url(
    client: TestClient, year: dict[str, Any], public_base_url: str
) -> None:
    parsed = feedparser.parse(feed(client, year["station_id"]).content)
    href = parsed.entries[0].enclosures[0].href
    assert href == (
        f"https://xuanphuc.example.vn/loa/api/v1/stations/{year['station_id']}"
        f"/podcast/{year['broadcasts']['dec']}.mp3"
    )
    assert parsed.feed.link == "https://xuanphuc.example.vn/loa/"
