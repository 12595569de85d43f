"""The contract's version. A connector names the version it was built for; the hub refuses a
connector whose major version differs or whose minor version is newer than the hub's."""

from __future__ import annotations

SDK_VERSION = "1.2"


class IncompatibleConnector(Exception):
    pass


def check_compatible(connector: str, required: str, provided: str = SDK_VERSION) -> None:
    try:
        req_major, req_minor = (int(part) for part in required.split("."))
        major, minor = (int(part) for part in provided.split("."))
    except ValueError as exc:
        raise IncompatibleConnector(
            f"connector {connector!r} declares sdk_version {required!r}; expected 'MAJOR.MINOR'"
        ) from exc
    if req_major != major or req_minor > minor:
        raise IncompatibleConnector(
            f"connector {connector!r} was built for hub.sdk {required}, but this hub provides "
            f"{provided}; install a release of the connector built for {major}.x"
        )
