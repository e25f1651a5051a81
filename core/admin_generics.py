"""Django's admin classes as the generics django-stubs makes them, which Django cannot subscript at run time.

For mypy, `ModelAdmin[Payment]` is django-stubs' `ModelAdmin` checked against `Payment`; at run time it is
Django's `admin.ModelAdmin` itself, so class bases and MROs stay exactly Django's. (django-stubs-ext's
`monkeypatch()` would make Django's own classes subscriptable instead, at the price of patching Django and of a
production dependency.) Subscript these names, as base classes; never use them bare.
"""

from typing import TYPE_CHECKING

__all__ = ["ModelAdmin", "TabularInline"]

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin, TabularInline
else:
    from django.contrib import admin

    class _Subscriptable:
        """`X[...]` is the Django class itself, whatever the type arguments."""

        def __init__(self, cls):
            self._cls = cls

        def __getitem__(self, _type_arguments):
            return self._cls

    ModelAdmin = _Subscriptable(admin.ModelAdmin)
    TabularInline = _Subscriptable(admin.TabularInline)
