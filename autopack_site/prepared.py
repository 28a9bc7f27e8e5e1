"""Queries that polls run many times a second, built by the ORM once per process and then only run.

A poll that has nothing new answers 204 after one small query. Building that query through the ORM
(resolving fields, quoting names, compiling) costs more than running it; here the ORM builds it once,
with markers where the arguments go, and each call passes its arguments to the stored SQL.
"""

from collections.abc import Callable

from django.db import connection
from django.db.models import QuerySet


class PreparedQuery:
    """`build(*markers)` returns the QuerySet; `first_row(*args)` runs it with the args in their place."""

    def __init__(self, build: Callable[..., QuerySet], arity: int = 0):
        self.build = build
        self.markers = tuple(f"\x00argument {i}\x00" for i in range(arity))
        self.compiled: tuple[str, list] | None = None

    def _compile(self) -> tuple[str, list]:
        sql, params = self.build(*self.markers).query.sql_with_params()
        # Each parameter is either one of the markers (an argument's position) or a constant of the query.
        slots = [("argument", self.markers.index(p)) if p in self.markers else ("constant", p) for p in params]
        return sql, slots

    def first_row(self, *args) -> tuple | None:
        if self.compiled is None:
            self.compiled = self._compile()
        sql, slots = self.compiled
        params = [args[value] if kind == "argument" else value for kind, value in slots]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
