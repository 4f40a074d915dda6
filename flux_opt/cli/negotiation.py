"""`flux-opt comparer`: what-if scenarios side by side, and parameter sweeps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flux_opt.cli.app import INSTANCE, app, console, err, fail_on_invalid, guard_outputs
from flux_opt.errors import InvalidInput


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


@app.command("comparer")
def comparer_command(
    base: INSTANCE,
    scenarios: Annotated[list[Path] | None, typer.Argument(
        help="Fichiers de scénario (.toml) : surcharges de la base (voir instances/scenarios/).")] = None,
    sortie: Annotated[Path, typer.Option("--sortie", "-s", help="Dossier où écrire la comparaison.")] = Path("comparaison"),
    processus: Annotated[int, typer.Option("--processus", "-p", min=1,
                                           help="Nombre de processus de calcul en parallèle.")] = 2,
    balayer: Annotated[str | None, typer.Option(
        "--balayer", help="Balayage d'un paramètre : parametre=debut:fin:pas, ex. prefet_taux=0.20:0.30:0.01 "
                          "(prefet_taux, prefet_agents_taux, prefet_hors_qpv_min, collectivite_plafond, "
                          "prioritaires_min, cia.q1_hors_qpv, cia.q234_qpv, <reservataire>.taux).")] = None,
    mesurer: Annotated[bool, typer.Option(
        "--mesurer", help="Avec --balayer : refaire chaque point en reconstruisant le modèle, comparer "
                          "les résultats et afficher le gain de temps.")] = False,
    a_chaud: Annotated[bool, typer.Option(
        "--a-chaud", help="Avec --balayer : garder la base du simplexe d'un point à l'autre (plus rapide ; "
                          "même plan, mais la répartition des attributions peut différer d'un plan séparé).")] = False,
):
    """Comparer des scénarios de négociation côte à côte, ou balayer un paramètre."""
    from flux_opt.model.solve import NoSolutionFound
    from flux_opt.pipeline import load
    from flux_opt.report.exports import claimed_folder

    if not scenarios and not balayer:
        err.print("[red]Indiquer au moins un fichier de scénario ou --balayer parametre=debut:fin:pas.[/red]")
        raise typer.Exit(2)
    guard_outputs({"--sortie": sortie}, {"la base": base, **{f"le scénario {s.name}": s for s in scenarios or []}})
    try:
        with claimed_folder(sortie):
            instance = load(base)
            if scenarios:
                _compare(base, instance, scenarios, sortie, processus)
            if balayer:
                _sweep(instance, balayer, sortie, processus, mesurer, a_chaud)
    except InvalidInput as exc:
        fail_on_invalid(exc)
    except NoSolutionFound as exc:
        err.print(f"[red]Le solveur n'a trouvé aucun plan ({exc}). Augmentez \\[solveur] temps_max_s.[/red]")
        raise typer.Exit(4)


def _compare(base_path: Path, instance, paths: list[Path], sortie: Path, processus: int) -> None:
    from flux_opt.negotiation.compare import compare, resolve_base
    from flux_opt.report.compare import comparison_renderable, write_comparison
    from flux_opt.negotiation.scenarios import load_scenario

    loaded, problems = [], []
    for path in paths:
        try:
            loaded.append(load_scenario(path))
        except InvalidInput as exc:
            problems.extend(exc.problems)
    if problems:
        raise InvalidInput(problems)
    for warning in resolve_base(base_path, loaded):
        err.print(f"[yellow]Attention : {warning}.[/yellow]")
    with _progress() as progress:
        task = progress.add_task("Plans des scénarios", total=len(loaded) + 1)
        result = compare(instance, loaded, processes=processus, on_done=lambda i: progress.advance(task))
    concerned: dict[str, list[str]] = {}  # the warnings `verifier` shows, once each, with their scenarios
    for name, plan in result.resultats.items():
        for warning in plan.resume.get("avertissements", []):
            concerned.setdefault(warning, []).append(name)
    for warning, names in concerned.items():
        err.print(f"[yellow]Avertissement ({', '.join(names)}) : {escape(warning)}[/yellow]")
    console.print(comparison_renderable(result))
    written = write_comparison(sortie, result)
    console.print(f"Fichiers écrits dans [bold]{sortie}[/bold] : {', '.join(written)}.")


def _sweep(instance, text: str, sortie: Path, processus: int, mesurer: bool, a_chaud: bool) -> None:
    from flux_opt.negotiation.sweep import parse_sweep, sweep
    from flux_opt.report.compare import sweep_renderable, write_sweep

    try:
        balayage = parse_sweep(text)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2)
    # The comparison with rebuilds is timed on one process, like for like.
    workers = 1 if mesurer else processus
    with _progress() as progress:
        task = progress.add_task(f"Balayage de {balayage.parametre}", total=len(balayage.valeurs))
        result = sweep(instance, balayage, reuse=True, processes=workers, warm_start=a_chaud,
                       on_done=lambda i: progress.advance(task))
        acceleration = None
        if mesurer:
            task2 = progress.add_task("Même balayage en reconstruisant", total=len(balayage.valeurs))
            rebuilt = sweep(instance, balayage, reuse=False, on_done=lambda i: progress.advance(task2))
            same = (rebuilt.points.equals(result.points) and rebuilt.objectifs.equals(result.objectifs)
                    and all(a.plan.equals(b.plan) and a.contraintes.equals(b.contraintes)
                            for a, b in zip(result.resultats, rebuilt.resultats)))
            acceleration = {"reutilisation_s": result.secondes, "reconstruction_s": rebuilt.secondes,
                            "acceleration": rebuilt.secondes / result.secondes, "identiques": bool(same)}
    console.print(sweep_renderable(result, acceleration))
    written = write_sweep(sortie, result, acceleration)
    console.print(f"Fichiers écrits dans [bold]{sortie}[/bold] : {', '.join(written)}.")


@app.command("negocier")
def negocier_command(
    instance: INSTANCE,
    port: Annotated[int, typer.Option("--port", min=0, max=65535,
                                      help="Port local de la page (127.0.0.1 seulement ; 0 : un port libre).")] = 8765,
    sortie: Annotated[Path, typer.Option("--sortie", "-s",
                                         help="Dossier où enregistrer les scénarios et les comparaisons.")] = Path("negociation"),
    sans_navigateur: Annotated[bool, typer.Option("--sans-navigateur",
                                                  help="Ne pas ouvrir la page dans le navigateur.")] = False,
):
    """Page de négociation en direct : modifier un taux et voir aussitôt qui gagne ou perd des logements."""
    from flux_opt.model.solve import NoSolutionFound
    from flux_opt.negotiation.live.app import HOST, bind, make_server
    from flux_opt.negotiation.live.state import Session
    from flux_opt.plan.evaluation import evaluate_result

    def simulated_year(scenario_instance, result):  # 20 simulated years: a spread in ~0.3 s on the example
        return evaluate_result(scenario_instance, result, tirages=20)

    guard_outputs({"--sortie": sortie}, {"l'instance": instance})  # the page never writes in the instance
    try:
        sock = bind(port)
    except OSError:
        err.print(f"[red]Le port {port} est déjà utilisé sur {HOST} : relancez avec --port <autre numéro>.[/red]")
        raise typer.Exit(2)
    try:
        with console.status("Calcul du plan de base…"):
            session = Session(instance, sortie, simulate=simulated_year)
    except InvalidInput as exc:
        fail_on_invalid(exc)
    except NoSolutionFound as exc:
        err.print(f"[red]Le solveur n'a trouvé aucun plan de base ({exc}). Augmentez \\[solveur] temps_max_s.[/red]")
        raise typer.Exit(4)
    url = f"http://{HOST}:{sock.getsockname()[1]}/"
    console.print(f"Page de négociation : [bold]{url}[/bold] (Ctrl+C pour arrêter). "
                  f"Scénarios et exports : [bold]{session.sortie}[/bold].")
    if not sans_navigateur:
        import webbrowser

        webbrowser.open(url)
    server = make_server(session)
    server.run(sockets=[sock])

