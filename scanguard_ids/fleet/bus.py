"""The Redis side of fleet mode: two streams and one key per active block.

    PREFIX:events       evidence, one entry per batch of response events (XADD MAXLEN ~)
    PREFIX:decisions    every published block/unblock (XADD MAXLEN ~): fields d (the
                        decision's JSON) and n (its node, so that node skips it undecoded)
    PREFIX:block:<ip>   the active block, SET ... PX <remaining ms>: Redis expires it with the
                        kernel's timeout, so a late joiner lists what is active (SCAN)

Every redis-py error becomes :class:`FleetError`; redis-py's pool reconnects on the next call,
so a caller only has to retry. redis is imported here only, when fleet mode is on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

import redis

from scanguard_ids.errors import ScanguardError
from scanguard_ids.fleet.codec import FleetDecision

_pack: Callable[[tuple[str | bytes, ...]], bytes] | None
try:  # the C command packer (scanguard-ids[fleet]); redis-py's own pipeline without it
    from hiredis import pack_command as _pack  # type: ignore[assignment]
except ImportError:  # pragma: no cover
    _pack = None

log = logging.getLogger(__name__)

#: Entries: (stream name, [(entry id, fields)])
Entries = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]


class FleetError(ScanguardError):
    """Redis is unreachable or answered with an error."""


def redact(url: str) -> str:
    """The URL without its password (for logs and the status)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class Bus:
    def __init__(self, url: str, prefix: str = "scanguard", events_maxlen: int = 1_000_000,
                 decisions_maxlen: int = 100_000, timeout: float = 5.0) -> None:
        self.url = redact(url)
        self.events = f"{prefix}:events"
        self.decisions = f"{prefix}:decisions"
        self.block_prefix = f"{prefix}:block:"
        self.events_maxlen = events_maxlen
        self.decisions_maxlen = decisions_maxlen
        try:
            self.r = redis.Redis.from_url(url, socket_timeout=timeout,
                                          socket_connect_timeout=min(timeout, 2.0))
        except ValueError as exc:
            raise FleetError(f"bad fleet URL {self.url}: {exc}") from None

    def close(self) -> None:
        self.r.close()

    def ping(self) -> None:
        try:
            self.r.ping()
        except redis.RedisError as exc:
            raise FleetError(f"redis {self.url}: {exc}") from exc

    # -- writes ---------------------------------------------------------------------------
    def publish_events(self, entries: Iterable[dict[str, str | bytes]]) -> int:
        """XADD each entry (one pipeline round trip); returns how many were sent."""
        pipe = self.r.pipeline(transaction=False)
        n = 0
        for fields in entries:
            pipe.xadd(self.events, fields,  # type: ignore[arg-type]
                      maxlen=self.events_maxlen, approximate=True)
            n += 1
        self._run(pipe)
        return n

    def publish_decisions(self, decisions: Iterable[FleetDecision], now: float) -> None:
        """Each decision to the stream and to its block key (SET PX remaining / DEL), in one
        round trip. A block already ended by ``now`` only goes to the stream."""
        commands: list[tuple[str | bytes, ...]] = []
        add = commands.append
        maxlen = str(self.decisions_maxlen)
        for fd in decisions:
            raw = fd.encode()
            key = self.block_prefix + fd.ip
            if fd.action == "block":
                left_ms = int((fd.expires - now) * 1000)
                if left_ms > 0:
                    add(("SET", key, raw, "PX", str(left_ms)))
            else:
                add(("DEL", key))
            # n: lets its node skip it undecoded
            add(("XADD", self.decisions, "MAXLEN", "~", maxlen, "*", "d", raw, "n", fd.node))
        if commands:
            self._send(commands)

    def _send(self, commands: list[tuple[str | bytes, ...]]) -> None:
        """The commands in one round trip, every reply read and checked: a pipeline, packed
        by hiredis in C when it is installed (redis-py's own packing of each argument cost
        a node ~3x the CPU per published decision, measured by timing both paths)."""
        if _pack is None:
            pipe = self.r.pipeline(transaction=False)
            for args in commands:
                pipe.execute_command(*args)
            self._run(pipe)
            return
        pool = self.r.connection_pool
        conn = None
        try:
            conn = _connection(pool)
            conn.send_packed_command([b"".join(map(_pack, commands))])
            for _ in commands:
                conn.read_response()  # raises an error reply
        except (redis.RedisError, OSError) as exc:
            if conn is not None:
                conn.disconnect()  # replies may be left unread: never reuse it as it is
            raise FleetError(f"redis {self.url}: {exc}") from exc
        finally:
            if conn is not None:
                pool.release(conn)

    def _run(self, pipe: redis.client.Pipeline) -> None:  # type: ignore[type-arg]
        try:
            pipe.execute()
        except redis.RedisError as exc:
            raise FleetError(f"redis {self.url}: {exc}") from exc

    # -- reads ------------------------------------------------------------------------------
    def last_id(self, stream: str) -> bytes:
        """The id of the newest entry of a stream (b"0-0" when empty or missing)."""
        try:
            rows = self.r.xrevrange(stream, count=1)
        except redis.RedisError as exc:
            raise FleetError(f"redis {self.url}: {exc}") from exc
        return _b(rows[0][0]) if rows else b"0-0"

    def read(self, after: dict[str, bytes], block_ms: int, count: int = 1000) -> Entries:
        """Entries after the given ids, waiting up to ``block_ms`` for the first (XREAD)."""
        try:
            return self.r.xread(after, count=count, block=block_ms) or []  # type: ignore[arg-type,return-value]
        except redis.RedisError as exc:
            raise FleetError(f"redis {self.url}: {exc}") from exc

    def active_blocks(self, chunk: int = 1000) -> list[bytes]:
        """The values of every PREFIX:block:* key (SCAN, then MGET in chunks)."""
        try:
            keys = list(self.r.scan_iter(match=self.block_prefix + "*", count=chunk))
            out: list[bytes] = []
            for i in range(0, len(keys), chunk):
                out += [_b(v) for v in self.r.mget(keys[i:i + chunk]) if v is not None]
            return out
        except redis.RedisError as exc:
            raise FleetError(f"redis {self.url}: {exc}") from exc


def _connection(pool: redis.ConnectionPool) -> redis.Connection:
    try:
        return pool.get_connection()  # type: ignore[return-value]
    except TypeError:  # redis-py < 5.3 wants a command name
        return pool.get_connection("XADD")  # type: ignore[return-value]


def _b(v: object) -> bytes:
    return v if isinstance(v, bytes) else str(v).encode()
