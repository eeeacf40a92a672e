"""CSV cells stay whole for a spreadsheet that splits on ";" as well as "," (issue 21,
finding 11): a name holding ";=…" must not become a formula in a cell of its own."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.helpers import make_station, staff

HOSTILE = "Xã Đông;=1+1;+cmd|' /C calc'!A0;@SUM(1)"


def _cells(line: str, separator: str) -> list[str]:
    """Split a line as a spreadsheet does: on `separator` outside quotes, each '"' turning
    quoting on or off ("" inside quotes is a quote)."""
    cells, cell, quoted = [], "", False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == separator and not quoted:
            cells.append(cell)
            cell = ""
        else:
            cell += ch
    return [*cells, cell]


def test_no_cell_of_the_csv_starts_a_formula_whichever_separator_is_used(
    client: TestClient,
) -> None:
    ids = make_station()
    h = staff(client, ids["station_id"])
    r = client.patch(
        f"/api/v1/stations/{ids['station_id']}", json={"name": HOSTILE}, headers=h["admin"]
    )
    assert r.status_code == 200, r.text
    r = client.get(
        "/api/v1/reports/compliance",
        params={"station_id": ids["station_id"], "year": 2024, "format": "csv"},
        headers=h["viewer"],
    )
    assert r.status_code == 200, r.text
    text = r.content.decode("utf-8-sig")
    assert "cmd|" in text
    for separator in (";", ","):
        for line in text.splitlines():
            for cell in _cells(line, separator):
                assert not cell.lstrip().startswith(("=", "+", "@")), (separator, line)
    # The name reads back whole, with the escape that keeps it text.
    assert f'"{HOSTILE.replace(chr(34), chr(34) * 2)}"' in text
