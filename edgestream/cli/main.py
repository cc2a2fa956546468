"""The ``edgestream`` command. Subcommands live in ``cmd_*.py`` modules of this package; each
exposes ``command`` (a click command or group) and imports heavy libraries inside its function,
so ``edgestream --help`` stays fast.

Exit codes: 0 ok, 2 usage or configuration error, 1 runtime failure.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import sys

import click

from edgestream import __version__
from edgestream.core.errors import ConfigError, EdgestreamError

log = logging.getLogger("edgestream")


class _Group(click.Group):
    """Group that maps edgestream errors to clean messages and exit codes."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except EdgestreamError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit, KeyboardInterrupt):
            raise
        except BrokenPipeError:  # the reader went away (`edgestream models | head`): stop quietly
            # later writes, including the interpreter's final flush, go nowhere instead of raising again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except Exception as exc:  # a bug or an unexpected library failure: short message, traceback with -v
            log.info("unexpected error", exc_info=True)
            click.echo(f"error: unexpected {type(exc).__name__}: {exc} (run with -v for the traceback)", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="edgestream")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """edgestream: real-time streaming signal processing for the edge.

    \b
    Typical session:
      edgestream simulate eeg &            # or: edgestream play recording.fif --loop &
      edgestream run --duration 20         # default pipeline: band-pass, notch, band power
      edgestream streams                   # what is on the network
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")


def _add_commands() -> None:
    import edgestream.cli as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("cmd_"):
            module = importlib.import_module(f"edgestream.cli.{info.name}")
            cli.add_command(module.command)


_add_commands()


def main() -> None:
    cli(prog_name="edgestream")
