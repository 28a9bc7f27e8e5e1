"""URL converters shared by the apps; importing this module registers them."""

from django.urls import register_converter


class IdConverter:
    """A run or phase id in a URL: anything but a slash or a NUL, which no database text may hold."""

    regex = "[^/\\x00]+"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(IdConverter, "id")
