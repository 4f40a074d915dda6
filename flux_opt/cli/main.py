"""Entry point of `flux-opt`: registers every command module, turns unexpected errors into French messages."""

from __future__ import annotations

import typer

# Imported for their @app.command side effect, in the order of `flux-opt --help`.
from flux_opt.cli import plan, stock, year, journal, explanation, negotiation, scale, rpls  # noqa: F401,I001
from flux_opt.cli.app import app, err
from flux_opt.errors import InvalidInput

_USAGE = (("Missing argument", "argument manquant"), ("Missing option", "option manquante"),
          ("No such option", "option inconnue"), ("No such command", "commande inconnue"),
          ("Invalid value for", "valeur invalide pour"),
          ("Got unexpected extra argument(s)", "argument(s) en trop"),
          ("Got unexpected extra arguments", "arguments en trop"), ("Got unexpected extra argument", "argument en trop"), ("does not exist", "n'existe pas"))


def _french_usage(message: str) -> str:
    for english, french in _USAGE:
        message = message.replace(english, french)
    return message


_received: list[int] = []  # signals turned into KeyboardInterrupt during this run


def _interrupt(signum, frame) -> None:
    """SIGTERM (or SIGHUP) unwinds like Ctrl-C: every `finally` runs, so a half-written output
    (a staging folder) is removed and nothing is left behind."""
    _received.append(signum)
    raise KeyboardInterrupt


def _interrupted() -> SystemExit:
    err.print("[yellow]Interrompu : les fichiers déjà écrits sont intacts.[/yellow]")
    return SystemExit(128 + _received[-1] if _received else 130)


def main() -> None:
    """Entry point: unexpected errors get a French message instead of a traceback
    (set FLUX_OPT_DEBUG=1 to see the traceback)."""
    import os
    import signal

    _received.clear()
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        code = app(standalone_mode=False)
        if code == 130:  # typer turns KeyboardInterrupt into Exit(130)
            raise _interrupted()
        raise SystemExit(code or 0)
    except InvalidInput as exc:
        from flux_opt.report.terminal import problems_table

        err.print(problems_table(exc.problems))
        raise SystemExit(2)
    except (KeyboardInterrupt, typer.Abort):
        raise _interrupted() from None
    except Exception as exc:  # noqa: BLE001 - last resort, the user gets a French message
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):  # click usage errors
            err.print(f"[red]Commande invalide : {_french_usage(exc.format_message())}[/red] "
                      "(voir flux-opt --help)")
            raise SystemExit(exc.exit_code)
        if os.environ.get("FLUX_OPT_DEBUG"):
            raise
        err.print(f"[red]Erreur interne de flux-opt ({type(exc).__name__} : {exc}).[/red] "
                  "Les fichiers déjà écrits sont intacts. Relancer avec FLUX_OPT_DEBUG=1 pour le détail.")
        raise SystemExit(1)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
