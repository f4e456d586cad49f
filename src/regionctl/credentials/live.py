"""The database side of rotation in a local deployment: roles and passwords on the writer (as the platform's
superuser), logins tried on every member."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from regionctl.credentials.rotation import Member
from regionctl.errors import DatabaseError, first_line
from regionctl.globaldb.service import GlobalDatabases

CONNECT_TIMEOUT_S = 3


class PgRoleAdmin:
    def __init__(self, gdbs: GlobalDatabases) -> None:
        self.gdbs = gdbs

    def _writer(self, database: str) -> psycopg.Connection[Any]:
        cluster = self.gdbs.cluster(database)
        member = cluster.member(self.gdbs.state(database).writer)
        try:
            return psycopg.connect(host=member.host, port=member.port, user="postgres", dbname=database,
                                   passfile=str(cluster.topo.login.passfile), autocommit=True,
                                   connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            raise DatabaseError(f"{database}: the writer {member.name} cannot be reached: {exc}".strip()) from None

    @contextmanager
    def _on_writer(self, database: str, doing: str) -> Iterator[psycopg.Connection[Any]]:
        """A superuser session on the writer; any PostgreSQL error becomes a DatabaseError saying what failed
        (its first line: a statement never carries a password here, only verifiers)."""
        try:
            with self._writer(database) as conn:
                yield conn
        except psycopg.Error as exc:
            raise DatabaseError(f"{database}: {doing} on the writer failed: {first_line(exc)}") from None

    def ensure_roles(self, database: str, owner: str, users: Sequence[str]) -> None:
        """The owner role, its two login users, the database and the workload's existing tables owned by it."""
        with self._on_writer(database, "creating the workload's roles") as conn, conn.transaction():
            conn.execute("set local lock_timeout = '5s'")  # never queue behind the workload for long
            conn.execute("select pg_advisory_xact_lock(hashtext('regionctl-credentials'))")
            for role, login in ((owner, False), *((u, True) for u in users)):
                if conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone() is None:
                    conn.execute(sql.SQL("create role {} " + ("login" if login else "nologin"))
                                 .format(sql.Identifier(role)))
                if login:
                    conn.execute(sql.SQL("grant {} to {}").format(sql.Identifier(owner), sql.Identifier(role)))
            conn.execute(sql.SQL("alter database {} owner to {}").format(sql.Identifier(database),
                                                                         sql.Identifier(owner)))
            self._adopt_tables(conn, owner)

    @staticmethod
    def _adopt_tables(conn: psycopg.Connection[Any], owner: str) -> None:
        """Tables a deployment made before credentials existed (owned by postgres) pass to the owner role."""
        rows = conn.execute(
            "select format('%I.%I', n.nspname, c.relname) from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind in ('r', 'p') "
            "and c.relowner = 'postgres'::regrole").fetchall()
        for (table,) in rows:
            conn.execute(sql.SQL("alter table {} owner to {}").format(sql.SQL(table), sql.Identifier(owner)))

    def set_password(self, database: str, user: str, scram_verifier: str) -> None:
        with self._on_writer(database, f"setting the password of {user}") as conn:
            conn.execute(sql.SQL("alter role {} password {}").format(sql.Identifier(user),
                                                                      sql.Literal(scram_verifier)))

    def members(self, database: str) -> list[Member]:
        cluster = self.gdbs.cluster(database)
        return [Member(r, cluster.member(r).host, cluster.member(r).port) for r in cluster.regions]

    def login_error(self, database: str, member: Member, credential: dict[str, Any]) -> str | None:
        """None when the credential logs in and acts as the owner; else why not (never the password)."""
        try:
            with psycopg.connect(host=member.host, port=member.port, user=credential["username"],
                                 password=credential["password"], dbname=database,
                                 options=f"-c role={credential['owner']}", connect_timeout=CONNECT_TIMEOUT_S,
                                 autocommit=True) as conn:
                row = conn.execute("select current_user").fetchone()
        except psycopg.Error as exc:
            return first_line(exc).replace(credential["password"], "***")
        if row is None or row[0] != credential["owner"]:
            return f"logged in but acts as {row and row[0]!r}, not {credential['owner']!r}"
        return None
