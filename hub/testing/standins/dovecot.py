"""A real IMAP server for tests: Dovecot from the distribution's packages, run unprivileged.

Mail connectors are tested against the server banks actually run, not a mock that agrees
with the client: UIDVALIDITY, UIDs, IDLE, literal framing and capability quirks are Dovecot's
own. Each ``DovecotServer`` writes a private configuration into a temporary directory (base
directory, logs, a passwd-file of users, Maildirs), listens on a free loopback port, and runs
``dovecot -F`` in the foreground as a child process: no system service, no root. When the
tests run as root (a CI container), Dovecot is started as ``nobody`` so it still runs
unprivileged; it never binds a privileged port either way.

``deliver`` puts mail in a mailbox the way a mail server's local delivery would end up (IMAP
APPEND, so Dovecot assigns the UID), ``reset_uidvalidity`` recreates a folder so its
UIDVALIDITY changes (a restored or migrated mailbox), and ``add_user`` adds an account while
the server runs (Dovecot re-reads the passwd-file).

Installed with ``apt-get install dovecot-imapd``; ``require_binary`` skips a test plainly
when the binary is missing, or fails it when ``TONGDAO_TEST_REQUIRE_DOVECOT=1`` (CI).
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hub.testing.server import free_port
from hub.testing.standins.certificates import StandInCertificates, make_certificates

REQUIRE_ENV = "TONGDAO_TEST_REQUIRE_DOVECOT"
_CANDIDATES = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")
_START_TIMEOUT = 20.0
_APPENDUID = re.compile(rb"APPENDUID (\d+) (\d+)")


class DovecotUnavailable(Exception):
    """No Dovecot binary here; the message says how to install one."""


def find_binary() -> str | None:
    found = shutil.which("dovecot")
    if found:
        return found
    return next((path for path in _CANDIDATES if os.access(path, os.X_OK)), None)


def require_binary() -> str:
    """The Dovecot binary, or a pytest skip (a failure when ``TONGDAO_TEST_REQUIRE_DOVECOT=1``)
    that says how to get it."""
    import pytest

    binary = find_binary()
    if binary is not None:
        return binary
    message = (
        "Dovecot is not installed (apt-get install dovecot-imapd); the IMAP tests need a real "
        "IMAP server"
    )
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(message + f" and {REQUIRE_ENV}=1 requires them", pytrace=False)
    pytest.skip(message)


@dataclass(frozen=True, slots=True)
class Account:
    address: str
    password: str


class DovecotServer:
    """One Dovecot instance on ``127.0.0.1:<port>`` with plain-text IMAP (loopback only)."""

    host = "127.0.0.1"

    def __init__(
        self,
        binary: str | None = None,
        directory: Path | None = None,
        spare_accounts: int = 64,
        tls: bool = False,
    ) -> None:
        binary = binary or find_binary()
        if binary is None:
            raise DovecotUnavailable("dovecot not found; apt-get install dovecot-imapd")
        self.binary = binary
        self._owned_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="tongdao-dovecot-"))
        self.port = 0
        self.tls_port = 0
        self.tls = tls
        self.certificates: StandInCertificates | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: BinaryIO | None = None
        self._accounts: dict[str, Account] = {}
        self._spare = [
            Account(f"box{secrets.token_hex(5)}@bank.test", secrets.token_urlsafe(12))
            for _ in range(spare_accounts)
        ]
        self._run_as = _unprivileged_user()
        entry = pwd.getpwnam(self._run_as) if self._run_as else pwd.getpwuid(os.getuid())
        self._uid, self._gid, self._user = entry.pw_uid, entry.pw_gid, entry.pw_name

    # --- lifecycle ------------------------------------------------------------------

    @property
    def ca_file(self) -> str | None:
        """The CA that signed the server's certificate (with ``tls=True``)."""
        return str(self.certificates.ca_file) if self.certificates else None

    def start(self) -> DovecotServer:
        self.port = free_port()
        if self.tls:
            self.tls_port = free_port()
            self.certificates = make_certificates(self.directory / "tls")
        for sub in ("run", "mail", "state"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        self._write_passwd()
        (self.directory / "dovecot.conf").write_text(self._config())
        self._chown()
        self._stderr = (self.directory / "stderr.log").open("wb")
        self._process = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.directory / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            user=self._uid if self._run_as else None,
            group=self._gid if self._run_as else None,
            start_new_session=True,
        )
        self._wait_ready()
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._owned_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"dovecot exited at start: {self.log()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=1) as sock,
            ):
                if sock.recv(100).startswith(b"* OK"):
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not answer within {_START_TIMEOUT}s")

    def log(self) -> str:
        parts = []
        for name in ("dovecot.log", "stderr.log"):
            path = self.directory / name
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    # --- accounts and mail ----------------------------------------------------------

    def add_user(self, address: str | None = None, password: str | None = None) -> Account:
        """A new account (a fresh, empty mailbox), usable at once.

        Dovecot re-reads its passwd-file at most once a second, so a running server hands out
        accounts written before it started (``spare_accounts``); beyond those, or for a chosen
        address, the file is rewritten and the call waits until the login works."""
        if address is None and password is None and self._spare:
            account = self._spare.pop()
            self._accounts[account.address] = account
            return account
        address = address or f"u{secrets.token_hex(4)}@bank.test"
        account = Account(address, password or secrets.token_urlsafe(12))
        self._accounts[address] = account
        if self.port:
            self._write_passwd()
            self._wait_login(account)
        return account

    def _wait_login(self, account: Account) -> None:
        deadline = time.monotonic() + 5
        while True:
            try:
                self.client(account).logout()
                return
            except imaplib.IMAP4.error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def client(self, account: Account) -> imaplib.IMAP4:
        """A logged-in stdlib IMAP client (what the tests use to play the mail system)."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.login(account.address, account.password)
        return client

    def deliver(self, account: Account, raw: bytes, folder: str = "INBOX") -> int:
        """Put ``raw`` into the folder; returns the UID Dovecot gave it."""
        client = self.client(account)
        try:
            if folder != "INBOX":
                client.create(_quoted(folder))
            status, data = client.append(_quoted(folder), None, None, raw)
            if status != "OK":
                raise RuntimeError(f"APPEND refused: {data!r}")
            match = _APPENDUID.search(data[0] or b"")
            return int(match.group(2)) if match else 0
        finally:
            client.logout()

    def reset_uidvalidity(self, account: Account, folder: str) -> None:
        """Delete and recreate ``folder`` (not INBOX): a new UIDVALIDITY, every old UID void,
        as after a mailbox restore or a migration to another server."""
        client = self.client(account)
        try:
            client.delete(_quoted(folder))
            client.create(_quoted(folder))
        finally:
            client.logout()

    # --- configuration --------------------------------------------------------------

    def _write_passwd(self) -> None:
        lines = [
            f"{a.address}:{{PLAIN}}{a.password}:{self._uid}:{self._gid}::"
            f"{self.directory / 'mail' / a.address}"
            for a in [*self._accounts.values(), *self._spare]
        ]
        # Written aside and renamed: Dovecot re-reads the file when it changes, and must never
        # see it half written.
        staged = self.directory / "passwd.new"
        staged.write_text("\n".join(lines) + "\n")
        if self._run_as:
            os.chown(staged, self._uid, self._gid)
        staged.replace(self.directory / "passwd")

    def _chown(self) -> None:
        if not self._run_as:
            return
        for root, dirs, files in os.walk(self.directory):
            for name in [*dirs, *files]:
                os.chown(os.path.join(root, name), self._uid, self._gid)
        os.chown(self.directory, self._uid, self._gid)

    def _config(self) -> str:
        d = self.directory
        return f"""
protocols = imap
listen = {self.host}
base_dir = {d / "run"}
state_dir = {d / "state"}
instance_name = tongdao-test-{self.port}
log_path = {d / "dovecot.log"}
info_log_path = {d / "dovecot.log"}
default_internal_user = {self._user}
default_internal_group = {_group_name(self._gid)}
default_login_user = {self._user}
first_valid_uid = 0
{self._ssl()}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:~/Maildir
mailbox_list_index = no
# IDLE reports new mail at once through inotify; where a container limits inotify, Dovecot
# falls back to checking, every second here rather than every 30.
mailbox_idle_check_interval = 1 secs
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d / "passwd"}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d / "passwd"}
}}
service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.tls_port}
    ssl = yes
  }}
  chroot =
}}
service anvil {{
  chroot =
  # No auth penalty: a test that logs in with a wrong password must not slow every later
  # login from 127.0.0.1 by up to 15 seconds.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    user = {self._user}
  }}
  unix_listener stats-writer {{
    user = {self._user}
  }}
}}
"""

    def _ssl(self) -> str:
        """STARTTLS on the IMAP port and TLS on ``tls_port``, or no TLS at all."""
        if self.certificates is None:
            return "ssl = no"
        return (
            f"ssl = yes\nssl_cert = <{self.certificates.cert_file}\n"
            f"ssl_key = <{self.certificates.key_file}"
        )


def _quoted(folder: str) -> str:
    """A folder name (already modified UTF-7) as an IMAP quoted string."""
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unprivileged_user() -> str | None:
    """``nobody`` when running as root (Dovecot then drops nothing: it starts unprivileged);
    None otherwise (it runs as whoever runs the tests)."""
    if os.getuid() != 0:
        return None
    return "nobody"


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name
