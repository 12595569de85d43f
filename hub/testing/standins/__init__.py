"""Local stand-ins for external peers (the regulator's endpoint, the WeChat API, ...).

Each speaks its peer's real protocol on loopback (HTTP; SMTP and IMAP for mail, where the
IMAP stand-in is a real Dovecot), for tests and ``make run``; they are the peer's side of the
wire, written from the peer's documentation, not from our code.
"""
