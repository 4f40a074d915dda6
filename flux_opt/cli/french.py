"""Typer's and Click's own help texts in French ("Show this message and exit.", panel titles, "Usage:").

Typer has no translation hook: these texts are module constants of `typer.rich_utils` and
literals of its bundled Click (`typer._click`), read when the help is drawn; `install()` replaces
them once, at import of the application.
"""

from __future__ import annotations

RICH_TEXTS = {
    "ARGUMENTS_PANEL_TITLE": "Arguments",
    "OPTIONS_PANEL_TITLE": "Options",
    "COMMANDS_PANEL_TITLE": "Commandes",
    "ERRORS_PANEL_TITLE": "Erreur",
    "ABORTED_TEXT": "Interrompu.",
    "DEFAULT_STRING": "[défaut : {}]",
    "ENVVAR_STRING": "[variable d'environnement : {}]",
    "REQUIRED_LONG_STRING": "[obligatoire]",
    "DEPRECATED_STRING": "(obsolète) ",
    "RICH_HELP": "Voir [blue]'{command_path} {help_option}'[/] pour l'aide.",
}
HELP_OPTION = "Afficher cette aide et quitter."
# The type shown beside each option (« <path> ») in the words of the user.
TYPE_LABELS = {"path": "chemin", "str": "texte", "int": "entier", "float": "nombre", "bool": "oui/non",
               "datetime": "date", "int range": "entier", "float range": "nombre", "list[str]": "textes"}
USAGE = "Utilisation : "


def install() -> None:
    from typer import core, rich_utils
    from typer._click import decorators, formatting

    for name, text in RICH_TEXTS.items():
        setattr(rich_utils, name, text)
    if getattr(decorators.help_option, "french", False):
        return
    english_display_type = core._TyperParameter.display_type

    def display_type(self, ctx) -> str | None:
        if getattr(self, "is_flag", False):  # --evaluer, --analyse/--sans-analyse take no value
            return None
        label = english_display_type(self, ctx)
        bare = label.removeprefix("<").removesuffix(">")
        return f"<{TYPE_LABELS[bare]}>" if bare in TYPE_LABELS else label

    core._TyperParameter.display_type = display_type
    english_help_option = decorators.help_option
    english_write_usage = formatting.HelpFormatter.write_usage

    def help_option(names):
        add = english_help_option(names)

        def french(command):
            add(command)
            command.params[-1].help = HELP_OPTION
            return command

        return french

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        english_write_usage(self, prog, args, USAGE if prefix is None else prefix)

    help_option.french = True
    decorators.help_option = help_option
    formatting.HelpFormatter.write_usage = write_usage
