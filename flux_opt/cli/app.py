"""The typer application and what every command shares: consoles, argument types, the exit on invalid input."""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Iterator

import typer
from rich.console import Console
from rich.progress import Progress, ProgressColumn, SpinnerColumn, TextColumn
from rich.text import Text

from flux_opt.cli import french
from flux_opt.errors import InvalidInput
from flux_opt.phases import LABELS, Phases

french.install()
app = typer.Typer(help="flux-opt : orientation annuelle du flux de logements sociaux vers les réservataires.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
                  subcommand_metavar="COMMANDE [ARGUMENTS]...")
console = Console()
err = Console(stderr=True)

INSTANCE = Annotated[Path, typer.Argument(help="Dossier d'instance (CSV + instance.toml) ou classeur .xlsx.")]


def show_warnings(warnings: list) -> None:
    """Input problems that did not stop the work (e.g. an unknown column, ignored)."""
    for warning in warnings:
        err.print(f"[yellow]Avertissement : {warning}[/yellow]")


def fail_on_invalid(exc: InvalidInput) -> None:
    from flux_opt.report.terminal import problems_table

    err.print(problems_table(exc.problems))
    err.print("[red]Rien n'a été écrit. Corrigez les données puis relancez.[/red]")
    raise typer.Exit(2)


class _Running(ProgressColumn):
    """Seconds so far of a running phase (a finished one shows its time in its description)."""

    def render(self, task) -> Text:
        return Text("" if task.finished or task.elapsed is None else f"{task.elapsed:.0f} s", style="dim")


@contextmanager
def phase_progress() -> Iterator[Phases]:
    """A `Phases` whose phases show on the terminal as they run: a spinner while running, then ✓ and
    the seconds taken (the pipeline announces them; nothing else here knows about the terminal)."""
    progress = Progress(SpinnerColumn(finished_text="[green]✓[/green]"), TextColumn("{task.description}"),
                        _Running(), console=console)
    tasks: dict[str, int] = {}

    def listen(name: str, event: str, seconds: float | None) -> None:
        label = LABELS.get(name, name)
        if event == "debut":
            tasks[name] = progress.add_task(f"{label}…", total=None)
        else:
            progress.update(tasks[name], description=f"{label} : {seconds:.1f} s".replace(".", ","),
                            total=1, completed=1)

    with progress:
        yield Phases(listen)


def guard_outputs(outputs: dict[str, Path | None], inputs: dict[str, Path | None]) -> None:
    """Before any work: exit 2 in French when an output is, lies inside or contains an input
    (flux_opt.report.guard: nothing the user gave is ever overwritten). Every command that writes calls it."""
    from rich.markup import escape

    from flux_opt.report.guard import refuse_overlap

    try:
        refuse_overlap(outputs, inputs)
    except InvalidInput as exc:
        for problem in exc.problems:
            err.print(f"[red]{escape(problem.message)}[/red]")
        raise typer.Exit(2)


def hold_output(stack: ExitStack, folder: Path | None, option: str = "--sortie",
                inputs: dict[str, Path | None] | None = None) -> None:
    """Claim the output folder before the work (report.exports.claimed_folder: a writable folder,
    one run at a time, left as it was if the run stops), once checked against the command's
    `inputs` (guard_outputs); a refusal exits 2 in French."""
    from flux_opt.report.exports import claimed_folder

    if folder is None:
        return
    guard_outputs({option: folder}, inputs or {})
    try:
        stack.enter_context(claimed_folder(folder, option))
    except InvalidInput as exc:
        fail_on_invalid(exc)
