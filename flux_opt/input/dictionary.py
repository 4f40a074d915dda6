"""The data dictionary (docs/donnees.md), written from the schema's own field descriptions.

One source: the French descriptions, examples and units of `flux_opt.input.schema` feed both the
JSON Schema (`flux-opt schema`) and this Markdown (`flux-opt schema --dictionnaire`); a test keeps
docs/donnees.md equal to it.
"""

from __future__ import annotations

from flux_opt.input.raw import REQUIRED_TABLES
from flux_opt.input.schema import ROW_MODELS, Parametres, json_schema

INTRODUCTION = """# Dictionnaire des données d'entrée

Document généré par `flux-opt schema --dictionnaire` à partir du schéma (les mêmes descriptions
figurent dans le schéma JSON : `flux-opt schema`). Ne pas modifier à la main.

Une instance est un dossier de fichiers CSV plus `instance.toml`, ou un classeur `.xlsx` (une feuille
par fichier, feuille `parametres` en lignes `cle` / `valeur`, ex. `regles.prefet_taux`).

**Fichiers CSV lus** : encodage UTF-8 (avec ou sans BOM) ou Windows-1252 ; séparateur `,` ou `;` ;
décimales avec un point ou une virgule (`0,08`), espaces de milliers acceptés (`1 234`) ; lignes
vides ignorées ; colonnes en plus signalées (erreur si le nom ressemble à une colonne connue absente,
sinon simple avertissement). C'est ce qu'écrit Excel en français (« CSV (séparateur : point-virgule) »
ou « CSV UTF-8 »). Les codes (commune, EPCI, département) restent des textes : `01001` garde son zéro.
Booléens : `oui`/`non`, `true`/`false`, `1`/`0`, `vrai`/`faux`.

**Fichiers CSV écrits** par flux-opt (plan.csv, attributions.csv…) : UTF-8 sans BOM, séparateur `,`,
point décimal — un format de machine, stable, pour les autres outils ; les rapports pour les personnes
sont `rapport.html` et `rapport.xlsx`.
"""

_TYPES = {"number": "nombre", "integer": "entier", "string": "texte", "boolean": "oui/non", "array": "liste"}


def _plain(prop: dict) -> dict:
    """The non-null alternative of an optional field."""
    options = [p for p in prop.get("anyOf", []) if p.get("type") != "null"]
    return {**options[0], **{k: v for k, v in prop.items() if k != "anyOf"}} if options else prop


def _type(prop: dict) -> str:
    p = _plain(prop)
    if "enum" in p:
        return "valeur parmi " + ", ".join(f"`{v}`" for v in p["enum"])
    if "pattern" in p:
        return "code (texte)"
    text = _TYPES.get(p.get("type"), "texte")
    if p.get("type") == "array":
        text = "liste de codes (séparés par `;` dans un CSV ou le classeur, `[\"…\", \"…\"]` en TOML)"
    if "maximum" in p and "minimum" in p:
        text += f", de {_number(p['minimum'])} à {_number(p['maximum'])}"
    elif "maximum" in p and "exclusiveMinimum" in p:
        text += f", plus de {_number(p['exclusiveMinimum'])} et au plus {_number(p['maximum'])}"
    return text


def _number(value) -> str:
    if float(value).is_integer():
        return f"{int(value):,}".replace(",", "\u202f") if value >= 10_000 else str(int(value))
    return str(value).replace(".", ",")


def _value(value) -> str:
    if value is None or value == []:
        return "vide"
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)


def _table(schema: dict, required: set[str], what: str = "Colonne") -> list[str]:
    lines = [f"| {what} | Type | Unité | Obligatoire / défaut | Exemple | Description |", "|---|---|---|---|---|---|"]
    for name, prop in schema["properties"].items():
        default = "obligatoire" if name in required else f"défaut : {_value(prop.get('default'))}"
        example = f"`{_value(prop['examples'][0])}`" if prop.get("examples") else ""
        lines.append(f"| `{name}` | {_type(prop)} | {prop.get('unite', '')} | {default} | {example} | "
                     f"{prop.get('description', '')} |")
    return lines


def dictionary_markdown() -> str:
    """The whole data dictionary, in French Markdown."""
    definitions = json_schema()["$defs"]
    out = [INTRODUCTION, "## instance.toml", "", Parametres.__doc__ or "", ""]
    for section, field in Parametres.model_fields.items():
        model = field.annotation
        schema = definitions[model.__name__]
        out += [f"### [{section}]", "", model.__doc__ or "", ""]
        out += _table(schema, set(schema.get("required", [])), "Clé") + [""]
    for table, model in ROW_MODELS.items():
        schema = definitions[model.__name__]
        status = "obligatoire" if table in REQUIRED_TABLES else "facultatif"
        out += [f"## {table}.csv ({status})", "", model.__doc__ or "", ""]
        out += _table(schema, set(schema.get("required", []))) + [""]
    from flux_opt.rpls.columns import dictionary_section  # lazy: the RPLS tables sit beside the reader

    out += dictionary_section()
    return "\n".join(out).rstrip() + "\n"
