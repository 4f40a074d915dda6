"""Entry point of `flux-opt`: registers every command module, turns unexpected errors into French messages."""

from __future__ import annotations

import typer

# Imported for their @app.command side effect, in the order of `flux-opt --help`.
from flux_opt.cli import plan, stock, year, journal, explanation, negotiation, scale  # noqa: F401,I001
from flux_opt.cli.app import app, err
from flux_opt.errors import DonneesInvalides

_USAGE = (("Missing argument", "argument manquant"), ("Missing option", "option manquante"),
          ("No such option", "option inconnue"), ("No such command", "commande inconnue"),
          ("Invalid value for", "valeur invalide pour"), ("Got unexpected extra argument",
                                                          "argument en trop"), ("does not exist", "n'existe pas"))


def _french_usage(message: str) -> str:
    for english, french in _USAGE:
        message = message.replace(english, french)
    return message


def main() -> None:
    """Entry point: unexpected errors get a French message instead of a traceback
    (set FLUX_OPT_DEBUG=1 to see the traceback)."""
    import os

    try:
        code = app(standalone_mode=False)
        raise SystemExit(code or 0)
    except DonneesInvalides as exc:
        from flux_opt.report.terminal import problems_table

        err.print(problems_table(exc.problemes))
        raise SystemExit(2)
    except (KeyboardInterrupt, typer.Abort):
        err.print("[yellow]Interrompu : les fichiers déjà écrits sont intacts.[/yellow]")
        raise SystemExit(130)
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
