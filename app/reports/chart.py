"""The monthly airtime chart's figures, shared by the PDF (reportlab) and the console (SVG).

One function decides what the chart shows, so that the page and the printed report draw the
same figure: a bar per month of CCHC airtime in minutes, coloured by the month's
compliance, over the shaded band of the programme's window, on an axis in steps of 5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.reports.schemas import ComplianceReport

STEP_MINUTES = 5


@dataclass(frozen=True)
class Bar:
    month: str  # "2024-03"
    label: str  # "T3", as the PDF writes it
    minutes: float
    compliant: bool
    pending: bool = False  # not yet due: neither compliant nor not


@dataclass(frozen=True)
class AirtimeChart:
    bars: list[Bar]
    low: float  # the window, in minutes
    high: float
    top: float  # the value axis runs from 0 to top, in steps of `step`
    step: int

    @property
    def ticks(self) -> list[int]:
        return list(range(0, int(self.top) + 1, self.step))


def airtime_chart(report: ComplianceReport) -> AirtimeChart:
    """The chart's bars, band and axis for this report (a year: 12 bars; a month: one)."""
    low, high = (v / 60_000 for v in report.summary.window_ms)
    bars = [
        Bar(
            m.month,
            f"T{int(m.month[5:])}",
            m.aired_ms / 60_000,
            m.compliant,
            pending=m.result == "pending",
        )
        for m in report.months
    ]
    top = max([high + 3, *(b.minutes for b in bars)]) + 2
    return AirtimeChart(
        bars=bars,
        low=low,
        high=high,
        top=STEP_MINUTES * math.ceil(top / STEP_MINUTES),
        step=STEP_MINUTES,
    )
