"""Entry point of the ``vault`` command.

Start-up must stay cheap (``vault --help`` and ``vault --version`` import
only Click), so subcommands are imported lazily from their own modules, and
this module imports nothing heavy: not even the error classes and the output
helpers, which are needed only once something went wrong or a command runs.
Every error is reported here, once, as ``vault: <message>`` plus ``hint:``
lines on stderr, with the exit code of README.md's table; tracebacks are
shown only with ``VAULT_DEBUG=1``.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import click

from vault._version import __version__

# name -> (module, attribute, short help). Kept here so that ``--help`` can
# list commands without importing them.
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("vault_cli._demo", "demo", "Tell the whole story in a temporary folder."),
    "init": ("vault_cli._vault", "init", "Create a vault in a folder, under a signed policy."),
    "identity": ("vault_cli._identity", "identity", "Create and show personal identities."),
    "seal": ("vault_cli._vault", "seal", "Seal files into the vault; prints each new id."),
    "open": ("vault_cli._vault", "open_", "Open a sealed document."),
    "ls": ("vault_cli._vault_list", "ls", "List the documents you may see."),
    "info": ("vault_cli._vault_list", "info", "Show a document's label and metadata."),
    "export": ("vault_cli._vault", "export", "Write a sealed document as a standard age file."),
    "reclassify": ("vault_cli._vault", "reclassify", "Change a document's label."),
    "declassify": ("vault_cli._vault", "declassify", "Declassify documents."),
    "shred": ("vault_cli._vault", "shred", "Destroy a document for good."),
    "rotate": ("vault_cli._vault", "rotate", "Rotate label-class keys."),
    "request": ("vault_cli._approve", "request", "Ask a second person to approve an action."),
    "approve": ("vault_cli._approve", "approve", "Approve or refuse a request, with your key."),
    "approvals": ("vault_cli._approve", "approvals", "List the requests waiting for you."),
    "doctor": ("vault_cli._vault", "doctor", "Check that documents and keys agree with the log."),
    "policy": ("vault_cli._policy", "policy",
               "Fill, check, test, explain, show and apply policies."),
    "classify": ("vault_cli._classify", "classify", "Show the label a file would be sealed with."),
    "audit": ("vault_cli._audit", "audit", "Review and verify the audit log."),
    "age": ("vault_cli._age", "age", "Low-level age v1 encryption (no policy, no audit)."),
    "agent": ("vault_cli._agent", "agent", "Keep unlocked identities for a while (optional)."),
    "migrate": (
        "vault_cli._migrate",
        "migrate",
        "Upgrade a PostgreSQL vault's schema; move a vault between backends.",
    ),
}


# Commands that take neither --vault nor --identity (anywhere on the line).
_NO_GLOBALS = frozenset({"vault age", "vault agent", "vault demo", "vault identity",
                         "vault policy check", "vault policy fill", "vault policy test"})


def _global_option(name: str, ctx: click.Context, value: str | None) -> None:
    """``--vault``/``--identity`` given after the command: the same setting."""
    if value is not None:
        from ._common import Settings

        root = ctx.find_root()
        if not isinstance(root.obj, Settings):  # completion runs no group callback
            root.obj = Settings()
        setattr(root.obj, name, value)


def with_global_options(cmd: click.Command, path: str) -> click.Command:
    """Let ``cmd`` (and the commands under it) take the global options after
    their own name too: ``vault ls --vault DIR`` as ``vault --vault DIR ls``."""
    if path in _NO_GLOBALS or getattr(cmd, "_vault_globals", False):
        return cmd
    cmd._vault_globals = True  # type: ignore[attr-defined]
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            with_global_options(sub, f"{path} {name}")
        return cmd
    taken = {opt for p in cmd.params for opt in getattr(p, "opts", ())}
    if "--vault" not in taken:
        cmd.params.append(click.Option(
            ["--vault", "vault_dir"], metavar="DIR", expose_value=False,
            callback=lambda c, _, v: _global_option("vault_dir", c, v),
            help="Vault folder or postgresql:// URI (as before the command; env VAULT_DIR)."))
    if "--identity" not in taken:
        cmd.params.append(click.Option(
            ["--identity", "identity_path"], metavar="FILE", expose_value=False,
            callback=lambda c, _, v: _global_option("identity_path", c, v),
            help="Your identity file (as before the command; env VAULT_IDENTITY)."))
    return cmd


class ReaderGone(Exception):
    """The reader of standard output went away (a broken pipe)."""


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when invoked."""

    def __init__(
        self, *args: Any, lazy: dict[str, tuple[str, str, str]] | None = None, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, attr, _ = self.lazy[cmd_name]
            cmd = getattr(importlib.import_module(module), attr)
            assert isinstance(cmd, click.Command)
            return with_global_options(cmd, f"{ctx.command_path} {cmd_name}")
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as e:
            # Click's main would end the process with a bare exit 1.
            raise ReaderGone() from e

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                rows.append((name, self.lazy[name][2]))
            elif (cmd := click.Group.get_command(self, ctx, name)) is not None:
                rows.append((name, cmd.get_short_help_str()))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        code = run_reporting_errors(
            lambda: super(LazyGroup, self).main(
                args, prog_name, complete_var, standalone_mode=False, **extra
            )
        )
        if standalone_mode:
            sys.exit(code)
        return code


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a service stopped, a terminal or ssh session
    closed): the command ends as Ctrl-C ends it -- temporary files removed,
    the attempt recorded as failed -- instead of being killed midway with
    plaintext in a temporary file and no record (THREAT-MODEL.md §13.2)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _terminate(signum: int, frame: object) -> None:
    raise Terminated(signum)


def run_reporting_errors(fn: Any) -> int:
    """Run ``fn`` and turn every outcome into an exit code, reporting errors."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:  # nohup's SIG_IGN stays
            signal.signal(sig, _terminate)
    try:
        rv = fn()
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except (click.exceptions.Abort, click.ClickException, KeyboardInterrupt) as e:
        return _click_exit_code(e)
    except Exception as e:
        code = _exit_code(e)
        if code is None:  # VAULT_DEBUG=1: let the traceback show
            raise
        return code
    return rv if isinstance(rv, int) else 0


def _click_exit_code(e: BaseException) -> int:
    from vault.errors import EXIT_INTERRUPTED, EXIT_OTHER, EXIT_USAGE

    from ._common import report_error

    # Ctrl-C, wherever it lands (a prompt turns it into Abort): 128 + SIGINT,
    # as shells report it (README.md, "Exit codes").
    # (click raises Abort "from None": the interrupt is its __context__.)
    why = e.__cause__ or e.__context__
    for cause in (e, why):
        if isinstance(cause, Terminated):  # 128 + the signal, as shells report it
            report_error(f"terminated ({signal.Signals(cause.signum).name})")
            return 128 + cause.signum
    if isinstance(e, KeyboardInterrupt) or isinstance(why, KeyboardInterrupt):
        report_error("interrupted")
        return EXIT_INTERRUPTED
    if isinstance(e, click.ClickException):
        hint = None
        if isinstance(e, click.UsageError) and e.ctx is not None:
            hint = f"see '{e.ctx.command_path} --help'"
        report_error(e.format_message(), hint)
        return EXIT_USAGE if isinstance(e, click.UsageError) else int(e.exit_code)
    if isinstance(why, EOFError):  # end of input at a prompt
        report_error("no answer: the input ended", "run the command at a terminal, or see "
                     "its --help for the environment variables it reads")
        return EXIT_USAGE
    report_error("aborted")
    return EXIT_OTHER


def _exit_code(e: Exception) -> int | None:
    """Report ``e`` and return the exit code, or None to re-raise it."""
    # Imported here, once something went wrong, to keep start-up cheap.
    from vault.errors import EXIT_OTHER, VaultError

    from ._common import report_error

    debug = os.environ.get("VAULT_DEBUG") == "1"
    if isinstance(e, BrokenPipeError | ReaderGone):
        # The reader went away (`vault ls | head -1`): say nothing, and
        # exit as a program SIGPIPE ends. Standard output now goes nowhere,
        # so that flushing it at exit cannot fail again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    if debug:
        return None
    if isinstance(e, VaultError):
        report_error(e.message, e.hint)
        return e.exit_code
    if isinstance(e, OSError):
        # OSError text holds the path and the system's reason, never secrets.
        where = f": {e.filename}" if e.filename else ""
        report_error(f"{e.strerror or str(e) or type(e).__name__}{where}")
        return EXIT_OTHER
    # A bug: never show a traceback (it may quote data).
    report_error(
        f"internal error ({type(e).__name__})",
        "this is a bug in vault; rerun with VAULT_DEBUG=1 for a traceback and report it",
    )
    return EXIT_OTHER


@click.group(
    cls=LazyGroup, lazy=_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, "--version", prog_name="vault", message="%(prog)s %(version)s")
@click.option(
    "--vault",
    "vault_dir",
    metavar="DIR",
    envvar=["VAULT_DIR", "VAULT_DSN"],
    help="Vault folder or postgresql:// URI (env VAULT_DIR or VAULT_DSN).",
)
@click.option(
    "--identity",
    "identity_path",
    envvar="VAULT_IDENTITY",
    type=click.Path(dir_okay=False),
    help="Your identity file (env VAULT_IDENTITY).",
)
@click.option(
    "--vault-id",
    "vault_id",
    metavar="ID",
    envvar="VAULT_ID",
    help="The vault's id, as its officer gave it: refuse any other vault (env VAULT_ID).",
)
@click.pass_context
def cli(ctx: click.Context, vault_dir: str | None, identity_path: str | None,
        vault_id: str | None) -> None:
    """vault: seal, open and audit classified office documents.

    Documents are standard age v1 files; who may open them is decided by a
    YAML classification policy and enforced by who holds keys; every attempt
    is recorded in a tamper-evident audit log before anything is decrypted.

    Exit codes: 0 success, 1 other error, 2 usage error, 3 denied by the
    policy, 4 integrity failure, 5 no key (or a wrong passphrase), 130
    interrupted (143 terminated, 129 hung up). Every command has --help; the manual is docs/vault.1.
    """
    from ._common import Settings

    ctx.obj = Settings(vault_dir=vault_dir, identity_path=identity_path, vault_id=vault_id)


def main() -> None:
    code = cli.main(prog_name="vault", standalone_mode=False)
    # The process ends here. Frozen objects are left alone by the
    # collections Python runs while it shuts down, which would otherwise
    # walk everything Click and cryptography made (about 10 ms per command).
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    main()
