"""The negotiation page's web server (Starlette, served by uvicorn on 127.0.0.1 only).

Routes: `/` the page; `POST /api/plan` re-plans the form's scenario and returns the results
panel (or the French message of each wrong field); `POST /api/enregistrer` saves the scenario
as the TOML `comparer` reads; `POST /api/exporter` writes the comparison (HTML, Excel);
`/fichiers/…` serves back what was saved or exported, and nothing else. Any failure becomes a
French message on the page: the server keeps running.

The page answers only itself (`Guard`, before any work): a request whose Host is not the loopback
address and port it serves (DNS rebinding) or whose Origin is another site gets 403; a POST must be
JSON (415), carry the run's token — a random value written in the served page only — in the
`X-Jeton` header (403) and stay under MAX_BODY bytes (413); a body that is not a JSON object in
UTF-8 gets 400. Every refusal is a French message and changes nothing.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from flux_opt.negotiation.live.fields import shown
from flux_opt.negotiation.live.state import Session, Update
from flux_opt.negotiation.live.view import results_context
from flux_opt.report.html import render
import time

HOST = "127.0.0.1"  # never another interface: the instance's data stay on this machine
LOOPBACK_NAMES = (HOST, "localhost")
TOKEN_HEADER = "X-Jeton"  # the page's script sends the token it was served with
MAX_BODY = 64 * 1024  # a form is a few hundred bytes
log = logging.getLogger(__name__)


class BadRequest(Exception):
    """A body the page never sends: answered 400 with its French message."""


class Guard:
    """ASGI middleware: refuses, before the app reads or computes anything, every request that does
    not come from the page this server served (see the module docstring)."""

    def __init__(self, app, token: str, max_body: int = MAX_BODY):
        self.app, self.token, self.max_body = app, token, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is None and scope["method"] == "POST":
            body, refusal = await self._body(receive, headers)
            if refusal is None:
                receive = _replay(body)
        if refusal is not None:
            status, message = refusal
            return await JSONResponse({"message": message}, status_code=status)(scope, receive, send)
        return await self.app(scope, receive, send)

    def _refusal(self, scope, headers: dict[str, str]) -> tuple[int, str] | None:
        port = (scope.get("server") or (HOST, 80))[1]
        allowed = {f"{name}:{port}" for name in LOOPBACK_NAMES} | (set(LOOPBACK_NAMES) if port == 80 else set())
        if headers.get("host", "").lower() not in allowed:
            return 403, "Hôte refusé : cette page ne répond qu'à son adresse locale " \
                        f"http://{HOST}:{port}/ (ouvrir cette adresse dans le navigateur)."
        origin = headers.get("origin")
        if origin is not None and origin.lower() not in {f"http://{h}" for h in allowed}:
            return 403, "Requête refusée : elle vient d'un autre site que la page de négociation."
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return 403, "Requête refusée : elle vient d'un autre site que la page de négociation."
        if scope["method"] == "POST":
            if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
                return 415, "Requête refusée : la page envoie ses formulaires en JSON (Content-Type: application/json)."
            if not secrets.compare_digest(headers.get(TOKEN_HEADER.lower(), "").encode(), self.token.encode()):
                return 403, "Requête refusée : jeton de la page absent ou faux (recharger la page de négociation)."
        return None

    async def _body(self, receive, headers: dict[str, str]) -> tuple[bytes, tuple[int, str] | None]:
        too_big = 413, f"Requête refusée : plus de {self.max_body // 1024} Ko (un formulaire en fait quelques centaines d'octets)."
        try:
            if int(headers.get("content-length", "0")) > self.max_body:
                return b"", too_big
        except ValueError:
            return b"", (400, "Requête refusée : longueur du contenu illisible.")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"", (400, "Requête interrompue.")
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                return b"", too_big
            if not message.get("more_body", False):
                return b"".join(chunks), None


def _replay(body: bytes):
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def create_app(session: Session, token: str | None = None) -> Starlette:
    """The page's app behind its Guard; `token` (random when None) is the one the page embeds."""
    token = token or secrets.token_urlsafe(32)

    def results_html(update: Update) -> str:
        context = results_context(update.comparison, session.base, session.year)
        return render("negocier_resultats.html", **context, seconds=update.seconds)

    async def page(request: Request) -> Response:
        groups: dict[str, list] = {}
        for field in session.fields:
            groups.setdefault(field.group, []).append((field, shown(field)))
        first = await run_in_threadpool(session.update, {})  # a new page starts from the base, like its form
        info = session.base.parametres.instance
        return HTMLResponse(render(
            "negocier.html", title=f"Négociation du flux — {info.nom}",
            subtitle=f"{info.bailleur} · département {info.departement} · année {info.annee}. Chaque modification "
                     "recalcule le plan ; la base reste affichée à côté. Les fichiers de l'instance ne sont jamais modifiés.",
            groups=groups, sortie=str(session.sortie), results=results_html(first), jeton=token))

    async def replan(request: Request) -> Response:
        update = await run_in_threadpool(session.update, await _values(request))
        if update.errors:
            return JSONResponse({"erreurs": update.errors})
        return JSONResponse({"html": results_html(update), "secondes": round(update.seconds, 3)})

    async def save(request: Request) -> Response:
        update = await run_in_threadpool(session.check, await _values(request))
        if update.errors:
            return JSONResponse({"erreurs": update.errors})
        path = await run_in_threadpool(session.save, update.scenario)
        return JSONResponse({"message": f"Scénario enregistré : {path}", "lien": _link(session, path)})

    async def export(request: Request) -> Response:
        update = await run_in_threadpool(session.update, await _values(request))
        if update.errors:
            return JSONResponse({"erreurs": update.errors})
        folder, names = await run_in_threadpool(session.export, update.scenario)
        links = {name: _link(session, folder / name) for name in names if name.startswith("comparaison")}
        return JSONResponse({"message": f"Comparaison exportée dans {folder}", "liens": links})

    async def download(request: Request) -> Response:
        try:
            path = (session.sortie / request.path_params["chemin"]).resolve()
            found = path.is_file() and path.is_relative_to(session.sortie)
        except (ValueError, OSError):  # a NUL byte, a name too long for the system…
            found = False
        if not found:
            return JSONResponse({"message": "fichier introuvable"}, status_code=404)
        return FileResponse(path, filename=path.name)

    async def bad_request(request: Request, exc: BadRequest) -> Response:
        return JSONResponse({"message": str(exc)}, status_code=400)

    async def failure(request: Request, exc: Exception) -> Response:
        log.exception("negocier: %s", request.url.path)
        return JSONResponse({"message": f"Le calcul a échoué ({type(exc).__name__} : {exc}). "
                                        "Le scénario précédent reste affiché."}, status_code=500)

    routes = [Route("/", page), Route("/api/plan", replan, methods=["POST"]),
              Route("/api/enregistrer", save, methods=["POST"]), Route("/api/exporter", export, methods=["POST"]),
              Route("/fichiers/{chemin:path}", download)]
    app = Starlette(routes=routes, exception_handlers={BadRequest: bad_request, Exception: failure})
    return Guard(app, token)


async def _values(request: Request) -> dict[str, str]:
    """The form's fields; BadRequest (400, nothing changes) for anything but a JSON object in UTF-8."""
    body = await request.body()
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("Requête refusée : le contenu n'est pas du texte UTF-8.") from None
    except ValueError as exc:
        raise BadRequest(f"Requête refusée : JSON illisible ({_json_error(exc)}).") from None
    if not isinstance(data, dict):
        raise BadRequest("Requête refusée : le formulaire doit être un objet JSON {\"champ\": \"valeur\"}.")
    if any(isinstance(v, (dict, list)) for v in data.values()):
        raise BadRequest("Requête refusée : chaque champ du formulaire est une valeur simple.")
    return {str(k): "" if v is None else str(v) for k, v in data.items()}


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"ligne {exc.lineno}, colonne {exc.colno}"
    return "valeur invalide"


def _link(session: Session, path: Path) -> str:
    return "/fichiers/" + path.relative_to(session.sortie).as_posix()


def bind(port: int) -> socket.socket:
    """The listening socket on 127.0.0.1:`port` (0: any free port); OSError when it is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


def make_server(session: Session):
    """A uvicorn server for the page (not started: `server.run(sockets=[bind(port)])`)."""
    import uvicorn  # lazy: the server only when the page is served

    return uvicorn.Server(uvicorn.Config(create_app(session), log_level="warning", lifespan="off"))


def start_in_background(session: Session, port: int = 0, timeout: float = 10.0):
    """Start the server in a thread and wait until it listens (tests, embedding): (server, thread, url)."""
    sock = bind(port)
    server = make_server(session)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise OSError(f"le serveur n'a pas démarré sur {HOST}:{port}")
    return server, thread, f"http://{HOST}:{sock.getsockname()[1]}/"
