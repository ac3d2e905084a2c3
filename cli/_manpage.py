"""The ``vault(1)`` man page, generated from the commands themselves.

    python -m vault_cli._manpage > docs/vault.1
    man ./docs/vault.1

Every command and option comes from the Click commands, so the page cannot
drift from ``--help`` (tests/test_cli_help.py regenerates it and compares);
the sections around them (exit status, environment, files) are written
here, once.
"""

from __future__ import annotations

import inspect

import click

from vault._version import __version__

__all__ = ["commands", "manpage"]

_EXIT = (
    ("0", "success"),
    ("1", "other error: disk full, read-only folder, malformed policy, unwritable audit "
          "log, agent not running; nothing was changed"),
    ("2", "usage error: bad option or argument, unknown name or id, an identity file that "
          "is insecure, malformed or not one, no terminal for a passphrase"),
    ("3", "denied by the policy (vault policy explain says why)"),
    ("4", "integrity failure: tampered, corrupted or unverifiable data"),
    ("5", "no key for this identity, or a wrong passphrase"),
    ("130", "interrupted (Ctrl-C); what was under way is recorded as failed, nothing "
            "half-written is left visible"),
    ("143, 129", "terminated (SIGTERM) or hung up (SIGHUP): as 130"),
    ("141", "the reader of the output went away (a broken pipe, as in 'vault ls | head "
            "-1'): nothing more is written, and nothing is said, as for a program SIGPIPE "
            "ends; an open or export under way is recorded as failed"),
)

_ENVIRONMENT = (
    ("VAULT_DIR", "the vault folder, as --vault (VAULT_DSN: a postgresql:// vault)"),
    ("VAULT_IDENTITY", "your identity file, as --identity"),
    ("VAULT_PASSPHRASE_FILE", "a file whose first line is the identity's passphrase; it must "
                              "be yours alone (chmod 600), or a pipe of yours"),
    ("VAULT_RECOVERY_PASSPHRASE_FILE", "the same, for init --protect-recovery"),
    ("VAULT_AGENT_SOCK", "the passphrase agent's socket (set by vault agent start)"),
    ("VAULT_STATE_DIR", "where this machine keeps its verified replay of each vault's audit "
                        "log (default ~/.local/state/vault)"),
    ("VAULT_PG_LOCK_TIMEOUT", "seconds a PostgreSQL vault waits for a lock another session "
                              "holds before it gives up naming the holder (default 30; 0 waits "
                              "for ever)"),
    ("VAULT_DEBUG", "1 shows tracebacks"),
)


def _roff(text: str) -> str:
    """Text as roff: backslashes escaped, no line taken for a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line
                     for line in text.splitlines())


def _paragraphs(text: str) -> str:
    """A docstring's paragraphs as roff (a blank line starts a new one)."""
    return _roff(inspect.cleandoc(text)).replace("\n\n", "\n.PP\n")


def commands(group: click.Group, ctx: click.Context) -> list[tuple[str, click.Command]]:
    """Every command under ``group``, depth first, with its full name."""
    out: list[tuple[str, click.Command]] = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None or cmd.hidden:
            continue
        sub = click.Context(cmd, info_name=name, parent=ctx)
        out.append((sub.command_path, cmd))
        if isinstance(cmd, click.Group):
            out += commands(cmd, sub)
    return out


def _options(cmd: click.Command, ctx: click.Context) -> list[str]:
    lines = []
    for param in cmd.get_params(ctx):
        if not isinstance(param, click.Option) or "--help" in param.opts:
            continue
        if cmd is not ctx.find_root().command and not param.expose_value:
            continue  # the global options, taken after a command too: listed once
        record = param.get_help_record(ctx)
        if record is None:
            continue
        flags, help_ = record
        lines += [".TP", f"\\fB{_roff(flags)}\\fR", _roff(help_)]
    return lines


def manpage() -> str:
    from .main import cli

    root = click.Context(cli, info_name="vault")
    lines = [
        f'.TH VAULT 1 "" "vault {__version__}" "User Commands"',
        ".SH NAME",
        "vault \\- seal, open and audit classified office documents",
        ".SH SYNOPSIS",
        ".B vault",
        "[\\fB\\-\\-vault\\fR \\fIDIR\\fR] [\\fB\\-\\-identity\\fR \\fIFILE\\fR] "
        "\\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]...",
        ".SH DESCRIPTION",
        _paragraphs(cli.help or ""),
        ".PP",
        "The global options may also follow the command's name "
        "(\\fBvault ls \\-\\-vault DIR\\fR).",
        ".SH GLOBAL OPTIONS",
        *_options(cli, root),
        ".SH COMMANDS",
    ]
    for path, cmd in commands(cli, root):
        ctx = click.Context(cmd, info_name=path.split()[-1], parent=root)
        usage = " ".join(cmd.collect_usage_pieces(ctx))
        lines += [f'.SS "{_roff(path)} {_roff(usage)}"', _paragraphs(cmd.help or "")]
        if not isinstance(cmd, click.Group):
            lines += _options(cmd, ctx)
    lines.append(".SH EXIT STATUS")
    for code, meaning in _EXIT:
        lines += [".TP", f"\\fB{code}\\fR", _roff(meaning)]
    lines.append(".SH ENVIRONMENT")
    for name, meaning in _ENVIRONMENT:
        lines += [".TP", f"\\fB{name}\\fR", _roff(meaning)]
    lines += [
        ".SH DIAGNOSTICS",
        "Errors go to standard error as \\fBvault:\\fR \\fImessage\\fR followed by a "
        "\\fBhint:\\fR line; data goes to standard output.",
        "Every value a line quotes (a name, a label, a marking, a description, a title, "
        "a file name) is escaped in its place (\\en, \\ex1b, \\eu202e): "
        "none starts a line of its own or drives the terminal.",
        ".SH SEE ALSO",
        "\\fBage\\fR(1), \\fBage\\-keygen\\fR(1); README.md and docs/ in the vault sources.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    click.echo(manpage(), nl=False)
