"""How the back office writes a moment (English locales): "2026-11-23 16:02:42Z", in UTC (`TIME_ZONE`), as the API
writes times — instead of Django's "Nov. 23, 2026, 4:02 p.m.", which hides the seconds and the time zone."""

DATETIME_FORMAT = r"Y-m-d H:i:s\Z"
SHORT_DATETIME_FORMAT = r"Y-m-d H:i:s\Z"
