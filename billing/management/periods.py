"""The period a command's `--month`, or `--start` and `--end`, name (`tie_out`, `journal_export`, `month_close`)."""

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import CommandError


def _month(value: str) -> tuple[datetime, datetime]:
    try:
        start = datetime.strptime(value, "%Y-%m").replace(tzinfo=UTC)
    except ValueError as exc:
        raise CommandError("--month must be YYYY-MM.") from exc
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def _moment(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--{name} must be an ISO 8601 time.") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def period(options: dict[str, Any]) -> tuple[datetime, datetime]:
    """The period a command's `--month`, or `--start` and `--end`, name."""
    if options["month"] and not (options["start"] or options["end"]):
        return _month(options["month"])
    if options["start"] and options["end"] and not options["month"]:
        return _moment(options["start"], "start"), _moment(options["end"], "end")
    raise CommandError("Give either --month, or both --start and --end.")
