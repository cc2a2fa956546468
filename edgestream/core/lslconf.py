"""liblsl configuration helpers.

liblsl reads its configuration once, when the library is first used, from the file named by
``$LSLAPICFG``. :func:`use_loopback` points it at a config that keeps stream discovery on
this machine; it must run before the first pylsl call in the process (child processes inherit
the environment variable).
"""

from __future__ import annotations

import os
from pathlib import Path

LOOPBACK_CONFIG = """\
[ports]
IPv6 = disable

[multicast]
ResolveScope = machine

[lab]
KnownPeers = {127.0.0.1}

[log]
level = -2
"""


def loopback_config_path() -> Path:
    """Path of a liblsl config file restricting discovery to this machine (written on demand)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgestream"
    path = cache / "lsl_loopback.cfg"
    if not path.exists() or path.read_text() != LOOPBACK_CONFIG:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(LOOPBACK_CONFIG)
        tmp.replace(path)
    return path


def use_loopback() -> Path:
    """Set ``$LSLAPICFG`` to the loopback config unless the user already set one."""
    if not os.environ.get("LSLAPICFG"):
        os.environ["LSLAPICFG"] = str(loopback_config_path())
    return Path(os.environ["LSLAPICFG"])
