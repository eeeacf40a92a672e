"""The period and format of a report as the query asks for them ("2024", "2024-03", "pdf")."""

from __future__ import annotations

from dataclasses import dataclass

from app.errors import Invalid

FORMATS = ("json", "csv", "xlsx", "pdf")
MIN_YEAR, MAX_YEAR = 2000, 2100


@dataclass(frozen=True)
class Period:
    """A local year, or one month of it."""

    year: int
    month: int | None = None

    @property
    def months(self) -> list[str]:
        """The "YYYY-MM" keys the period covers."""
        numbers = [self.month] if self.month else range(1, 13)
        return [f"{self.year:04d}-{m:02d}" for m in numbers]

    @property
    def month_key(self) -> str | None:
        return f"{self.year:04d}-{self.month:02d}" if self.month else None


def parse_period(*, year: str | None, month: str | None) -> Period:
    """Read the `year` and `month` query values ("3", "03" or "2024-03"); 422 naming the bad one."""
    parsed_year: int | None = None
    if year is not None and year.strip() != "":
        text = year.strip()
        if not text.isdigit() or not MIN_YEAR <= int(text) <= MAX_YEAR:
            raise Invalid(f"year: must be a year from {MIN_YEAR} to {MAX_YEAR}, not {year!r}")
        parsed_year = int(text)
    if month is None or month.strip() == "":
        if parsed_year is None:
            raise Invalid("year: required, e.g. year=2024")
        return Period(parsed_year)
    text = month.strip()
    month_year: int | None = None
    if len(text) == 7 and text[4] == "-" and text[:4].isdigit():
        month_year, text = int(text[:4]), text[5:]
    if not text.isdigit() or not 1 <= int(text) <= 12:
        raise Invalid(f"month: must be 1 to 12 or YYYY-MM, not {month!r}")
    if month_year is not None:
        if parsed_year is not None and parsed_year != month_year:
            raise Invalid(f"month: {month!r} is not in year {parsed_year}")
        if not MIN_YEAR <= month_year <= MAX_YEAR:
            raise Invalid(f"month: the year must be from {MIN_YEAR} to {MAX_YEAR}, not {month!r}")
        parsed_year = month_year
    if parsed_year is None:
        raise Invalid("year: required with a month number, e.g. year=2024&month=3")
    return Period(parsed_year, int(text))


def parse_format(value: str | None) -> str:
    """The report format; 422 naming the ones there are."""
    fmt = (value or "json").strip().lower()
    if fmt not in FORMATS:
        raise Invalid(f"format: must be one of {', '.join(FORMATS)}, not {value!r}")
    return fmt
