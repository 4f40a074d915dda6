"""Rich renderables for the terminal (the CLI prints them; nothing here prints)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from rich.markup import escape

from flux_opt.errors import InputProblem
from flux_opt.model.registry import label
from flux_opt.explanation.sentences import fr_number, fr_percent, plan_quality
from flux_opt.plan.names import Names
from flux_opt.plan.result import Result
from flux_opt.report.annexes import target_basis


MAX_PROBLEMS_SHOWN = 60  # a 50 MB file may hold 500 000 problems: rendering them all took minutes


def problems_table(problems: list[InputProblem], title: str = "Données invalides") -> Table:
    """The first MAX_PROBLEMS_SHOWN problems, then how many more there are in each file."""
    table = Table(title=f"{title} : {fr_number(len(problems))} problème(s)", title_style="bold red", show_lines=False)
    for column in ("Fichier", "Ligne", "Champ", "Problème"):
        table.add_column(column, overflow="fold")
    for p in problems[:MAX_PROBLEMS_SHOWN]:
        table.add_row(escape(p.fichier), "" if p.ligne is None else str(p.ligne), escape(p.champ or ""),
                      escape(p.message))
    rest: dict[str, int] = {}
    for p in problems[MAX_PROBLEMS_SHOWN:]:
        rest[p.fichier] = rest.get(p.fichier, 0) + 1
    for fichier, count in rest.items():
        table.add_row(escape(fichier), "…", "", f"et {fr_number(count)} autre(s) problème(s) dans ce fichier "
                                                "(corriger les premiers : ils se répètent souvent)", style="dim")
    return table


def plan_summary(result: Result) -> Group:
    """What a person reads after `flux-opt plan`: the flux, the plan's quality, each réservataire's
    target and plan (by name), the rules that cannot hold."""
    r, noms = result.resume, result.noms
    head = Text()
    head.append(f"{r['instance']} — {r['bailleur']} — département {r['departement']}, année {r['annee']}\n", "bold")
    head.append(f"Flux annuel C = {fr_number(r['flux'])} logements (libérations prévues "
                f"{fr_number(r['liberations_prevues'])}, exclusions {fr_number(r['exclusions'])})\n")
    head.append(f"Plan {plan_quality(r)} ; calcul : construction {fr_number(r['temps_construction_s'])} s, "
                f"résolution {fr_number(r['temps_resolution_s'])} s\n")
    head.append(f"Adéquation : {fr_number(r['attributions_prevues'])} attributions prévues sur "
                f"{fr_number(r['flux'])} logements ({fr_percent(r['adequation'])})\n")
    table = Table(title="Orientation par réservataire")
    for column in ("Réservataire", "Objectif", "Logements", "Écart", "Adéquation"):
        table.add_column(column, justify="right" if column != "Réservataire" else "left")
    for row in result.objectifs.itertuples():
        style = "red" if row.ecart != 0 else None
        gap = fr_number(row.ecart)
        table.add_row(noms.reservataire(row.reservataire), fr_number(row.cible), fr_number(row.logements),
                      gap if row.ecart <= 0 else f"+{gap}", fr_percent(row.adequation), style=style)
    parts = [head, table]
    if r.get("cadre_legal"):
        parts.insert(0, Text(r["cadre_legal"], style="bold white on red" if r.get("hors_cadre_legal") else "yellow"))
    revoyure = r.get("revoyure")
    if revoyure:
        parts.append(Text(f"Report du bilan {revoyure['annee']} (clause de revoyure) :", style="bold"))
        parts += [Text(f"• {phrase}") for phrase in revoyure["phrases"] or ["aucun écart à reporter."]]
    clipped = result.contraintes.loc[result.contraintes["statut"] == "ecretee"]
    if len(clipped):
        warn = Table(title="Exclusions écrêtées aux libérations prévues (plan calculé quand même)",
                     title_style="bold yellow")
        warn.add_column("Exclusion")
        warn.add_column("Écrêtement")
        for row in clipped.itertuples():
            warn.add_row(row.portee, row.explication)
        parts.append(warn)
    violated = result.contraintes.loc[result.contraintes["statut"] == "violee"]
    if len(violated):
        bad = Table(title="Règles qui ne peuvent pas être tenues", title_style="bold red")
        bad.add_column("Règle")
        bad.add_column("Portée")
        bad.add_column("Écart", justify="right")
        for row in violated.itertuples():
            bad.add_row(label(row.contrainte), noms.scope(row.portee), fr_number(-row.marge))
        parts.append(bad)
    else:
        parts.append(Text("Toutes les règles sont respectées.", style="bold green"))
    return Group(*parts)


def conformity_table(table, title: str = "Conformité du plan aux règles légales", noms: Names | None = None) -> Group:
    """The conformity table (flux_opt.conformity): the lines not respected first, then a count; rules
    and scopes by name (conformite.csv keeps the codes)."""
    noms = noms or Names()
    bad = table.loc[table["respectee"] != "oui"]
    shown = Table(title=title, title_style="bold")
    for column in ("Règle", "Portée", "Base", "Limite", "Valeur", "Respectée"):
        shown.add_column(column, justify="right" if column in ("Base", "Valeur") else "left", overflow="fold",
                         ratio=2 if column in ("Règle", "Portée", "Limite") else 1)
    for row in (bad if len(bad) else table).itertuples():
        value = "—" if row.valeur is None or row.valeur != row.valeur else fr_number(row.valeur)
        shown.add_row(label(row.regle), noms.scope(str(row.portee)), fr_number(row.base), row.limite,
                      value, row.respectee, style="red" if row.respectee == "non" else None)
    failed = int((table["respectee"] == "non").sum())
    summary = Text(f"{len(table)} lignes vérifiées : " + (f"{failed} non respectée(s)." if failed
                   else "toutes respectées."), style="bold red" if failed else "bold green")
    return Group(shown, summary) if len(bad) or len(table) <= 20 else Group(summary)


def targets_view(instance, targets, flux: int) -> Table:
    """Each réservataire's objective for the year by name, and how it was set, in words (verifier)."""
    rows = {r.id: r for r in instance.reservataires}
    table = Table(title="Objectifs de l'année", title_justify="left")
    table.add_column("Réservataire", ratio=2, overflow="fold")
    table.add_column("Objectif", justify="right", no_wrap=True)
    table.add_column("Calcul", ratio=3, overflow="fold")
    for t in targets.table.itertuples():
        table.add_row(t.nom or t.id, fr_number(t.cible), target_basis(t.source, rows[t.id], int(t.base), flux))
    return table
