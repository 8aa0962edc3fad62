"""A small client of CrowdSec's Local API as a watcher (machine): login, post alerts, delete.

Checked against Debian's crowdsec 1.4.6: ``POST /v1/watchers/login`` gives a JWT (valid one hour,
``expire`` in RFC 3339), ``POST /v1/alerts`` takes a list of alerts that already carry their
decisions (kept as posted, origin included; each ends at the alert's ``stop_at`` plus its
``duration``), and a machine may ``DELETE /v1/decisions`` with its JWT, filtered by ``ip`` and
``scenario``. Stdlib HTTP only (urllib): no dependency.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from scanguard_ids import __version__
from scanguard_ids.errors import ConfigError, ScanguardError
from scanguard_ids.model import Decision

log = logging.getLogger(__name__)

REFRESH_MARGIN_S = 60.0  # log in again this long before the token expires
# The LAPI reads NAME/VERSION from it and refuses a login whose agent has no version.
USER_AGENT = f"scanguard/{__version__}"


class LapiError(ScanguardError):
    """The Local API could not be reached, or refused a request."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # None: not reached (network, timeout)

    @property
    def retry(self) -> bool:
        """Worth trying again later: not reached, or the server's own trouble."""
        return self.status is None or self.status >= 500 or self.status == 429


@dataclass(frozen=True, slots=True)
class Credentials:
    url: str
    login: str
    password: str


def load_credentials(path: str, url: str = "", login: str = "", password: str = ""
                     ) -> Credentials:
    """The cscli credentials file (``url:``, ``login:``, ``password:`` lines), with the
    explicit keys taking precedence. Raises ConfigError naming the key."""
    found: dict[str, str] = {}
    if path:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError("crowdsec.credentials",
                              f"cannot read {path}: {exc.strerror}") from None
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep and not line.startswith((" ", "#")):
                found[name.strip()] = value.strip().strip("'\"")
    creds = Credentials(url or found.get("url", ""), login or found.get("login", ""),
                        password or found.get("password", ""))
    for name in ("url", "login", "password"):
        if not getattr(creds, name):
            raise ConfigError(f"crowdsec.{name}",
                              f"missing (not set, and not in {path or 'a credentials file'})")
    return creds


def rfc3339(ts: float) -> str:
    """With microseconds: Go's RFC 3339 parser takes them, and a ban anchored at a truncated
    second would end up to a second early."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def alert_body(d: Decision, scenario: str, origin: str, ttl: int, now: float) -> dict[str, Any]:
    """One alert carrying one ban decision of ``ttl`` seconds from ``now``, with our evidence
    as meta. The LAPI ends a decision at the alert's ``stop_at`` plus its duration, so
    ``stop_at`` is ``now`` (the post), not the last response: evidence seconds old (a Suricata
    backlog, lines read after a restart, a post delayed by an outage) would otherwise end the
    ban early, or post it already expired. The evidence's own times stay in ``start_at`` and
    the meta."""
    meta = {
        "responses": str(d.count),
        "ports": ",".join(map(str, d.ports)),
        "kinds": ",".join(d.kinds),
        "sensor": ",".join(d.sensors),
        "strikes": str(d.strikes),
        "manual": "true" if d.manual else "false",
        "reason": d.reason,
        "last_seen": rfc3339(d.last_seen) if d.last_seen else "",
    }
    start = min(d.first_seen or now, now)
    return {
        "scenario": scenario,
        "scenario_hash": "",
        "scenario_version": "",
        "message": f"scanguard: {d.reason or 'port scan'} ({d.ip})",
        "events_count": max(d.count, 1),
        "start_at": rfc3339(start),
        "stop_at": rfc3339(now),
        "capacity": 0,
        "leakspeed": "0",
        "simulated": False,
        "remediation": True,
        "events": [],
        "source": {"scope": "Ip", "value": d.ip, "ip": d.ip},
        "decisions": [{"type": "ban", "duration": f"{ttl}s", "scope": "Ip", "value": d.ip,
                       "origin": origin, "scenario": scenario}],
        "meta": [{"key": k, "value": v} for k, v in meta.items() if v],
    }


class LapiClient:
    """Not thread-safe: one worker thread owns it."""

    def __init__(self, creds: Credentials, scenario: str, timeout: float) -> None:
        self.creds = creds
        self.base = creds.url.rstrip("/")
        self.scenario = scenario
        self.timeout = timeout
        self.token = ""
        self.expires = 0.0  # epoch seconds
        self.logins = 0
        self.requests = 0  # every HTTP request, logins included

    def _call(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = orjson.dumps(body) if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        self.requests += 1
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode(errors="replace")
            raise LapiError(f"{method} {path}: HTTP {exc.code} {detail}", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            raise LapiError(f"{method} {path}: {getattr(exc, 'reason', exc)}") from None
        try:
            return orjson.loads(raw) if raw.strip() else None
        except orjson.JSONDecodeError:
            raise LapiError(f"{method} {path}: not JSON: {raw[:100]!r}") from None

    def login(self) -> None:
        ans = self._call("POST", "/v1/watchers/login",
                         {"machine_id": self.creds.login, "password": self.creds.password,
                          "scenarios": [self.scenario]}, auth=False)
        if not isinstance(ans, dict) or not ans.get("token"):
            raise LapiError(f"login: unexpected answer {ans!r}")
        self.token = str(ans["token"])
        try:
            self.expires = datetime.fromisoformat(str(ans.get("expire", ""))).timestamp()
        except ValueError:
            self.expires = 0.0  # unknown: log in again on the next 401
        self.logins += 1
        log.info("crowdsec login ok url=%s machine=%s", self.base, self.creds.login)

    def authed(self, method: str, path: str, body: Any, now: float) -> Any:
        """A JWT call: log in first when there is no token or it is about to expire, and once
        more on a 401 (the LAPI restarted with a new secret, or the clock was off)."""
        if not self.token or (self.expires and now >= self.expires - REFRESH_MARGIN_S):
            self.login()
        try:
            return self._call(method, path, body)
        except LapiError as exc:
            if exc.status != 401:
                raise
        log.info("crowdsec token refused, logging in again")
        self.login()
        return self._call(method, path, body)

    def post_alerts(self, alerts: list[dict[str, Any]], now: float) -> None:
        self.authed("POST", "/v1/alerts", alerts, now)

    def delete(self, ip: str, now: float) -> int:
        """Delete our decisions (this scenario) on ``ip``; how many the LAPI deleted."""
        q = urllib.parse.urlencode({"ip": ip, "scenario": self.scenario})
        ans = self.authed("DELETE", f"/v1/decisions?{q}", None, now)
        try:
            return int(ans.get("nbDeleted", 0)) if isinstance(ans, dict) else 0
        except (TypeError, ValueError):
            return 0
