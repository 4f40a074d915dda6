"""The negotiation page answers only its own page: a real server on 127.0.0.1 (ephemeral port),
raw HTTP requests (http.client) as a hostile web page or a DNS-rebinding attacker would send them.
Every refusal is French, comes before any work and changes nothing; saves never replace another
scenario, even 20 at once."""

from __future__ import annotations

import http.client
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import EXEMPLE
from flux_opt.negotiation.live.app import start_in_background
from flux_opt.negotiation.live.state import Session
from flux_opt.negotiation.scenarios import load_scenario


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """(port, token, session) of a served page."""
    session = Session(EXEMPLE, tmp_path_factory.mktemp("garde") / "sortie")
    server, thread, url = start_in_background(session)
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    status, text = call(port, "GET", "/")
    assert status == 200
    token = re.search(r'data-jeton="([^"]+)"', text).group(1)
    yield port, token, session
    server.should_exit = True
    thread.join(timeout=5)


def call(port: int, method: str, path: str, body=None, headers: dict | None = None) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, answer.read().decode("utf-8")
    finally:
        connection.close()


def post(page, path: str, data, headers: dict | None = None) -> tuple[int, dict]:
    port, token, _ = page
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    status, text = call(port, "POST", path, body, {"Content-Type": "application/json", "X-Jeton": token,
                                                   **(headers or {})})
    return status, json.loads(text)


def files(session) -> dict[str, bytes]:
    return {p.relative_to(session.sortie).as_posix(): p.read_bytes()
            for p in session.sortie.rglob("*") if p.is_file()} if session.sortie.exists() else {}


def test_the_served_page_works_with_its_token(page):
    port, token, session = page
    status, text = call(port, "GET", "/", headers={"Host": f"localhost:{port}"})
    assert status == 200 and f'data-jeton="{token}"' in text
    status, answer = post(page, "/api/plan", {"regles.prefet_taux": "25"},
                          {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"})
    assert status == 200 and "Qui gagne, qui perd" in answer["html"]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "localhost", "",
                                  "127.0.0.1:{port}.evil.example"])
def test_a_foreign_host_is_refused_dns_rebinding(page, host):
    port, _, session = page
    before = files(session)
    for method, path in (("GET", "/"), ("GET", "/fichiers/x.toml")):
        status, text = call(port, method, path, headers={"Host": host.format(port=port)})
        assert status == 403 and "Hôte refusé" in json.loads(text)["message"]
    status, answer = post(page, "/api/enregistrer", {"nom": "Rebond"}, {"Host": host.format(port=port)})
    assert status == 403 and files(session) == before


def test_a_cross_site_post_changes_nothing(page):
    port, token, session = page
    before, shown = files(session), session.scenario
    # what a form or fetch() of another site can send without a preflight: text/plain, its own Origin
    hostile = {"Content-Type": "text/plain", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    for path in ("/api/enregistrer", "/api/exporter", "/api/plan"):
        status, text = call(port, "POST", path, json.dumps({"nom": "Piège", "regles.prefet_taux": "10"}), hostile)
        assert status == 403 and "autre site" in json.loads(text)["message"]
        # even with the right token and type, another Origin is refused
        status, answer = post(page, path, {"nom": "Piège"}, {"Origin": "http://evil.example"})
        assert status == 403
        status, answer = post(page, path, {"nom": "Piège"}, {"Origin": "null"})
        assert status == 403
    assert files(session) == before and session.scenario is shown


def test_json_and_the_token_are_required(page):
    port, token, session = page
    before = files(session)
    status, text = call(port, "POST", "/api/enregistrer", json.dumps({"nom": "Sans jeton"}),
                        {"Content-Type": "application/json"})
    assert status == 403 and "jeton" in json.loads(text)["message"]
    status, answer = post(page, "/api/enregistrer", {"nom": "Faux jeton"}, {"X-Jeton": token[:-1] + "x"})
    assert status == 403
    status, text = call(port, "POST", "/api/enregistrer", json.dumps({"nom": "Texte"}),
                        {"Content-Type": "text/plain", "X-Jeton": token})
    assert status == 415 and "JSON" in json.loads(text)["message"]
    assert files(session) == before


def test_a_large_body_is_refused_before_it_is_read(page):
    port, token, session = page
    shown = session.scenario
    big = b'{"nom": "' + b"x" * 10_000_000 + b'"}'
    status, answer = post(page, "/api/plan", big)
    assert status == 413 and "Ko" in answer["message"]
    # the same without Content-Length (chunked): counted while read
    chunks = (big[i:i + 65536] for i in range(0, len(big), 65536))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", "/api/plan", body=chunks, encode_chunked=True,
                       headers={"Content-Type": "application/json", "X-Jeton": token})
    assert connection.getresponse().status == 413
    connection.close()
    assert session.scenario is shown


@pytest.mark.parametrize("body, words", [
    (b"{pas du json", "JSON illisible (ligne 1, colonne 2)"),
    (b'["regles.prefet_taux", "10"]', "objet JSON"),
    (b'{"nom": "\xff\xfe"}', "UTF-8"),
    (b'{"regles.prefet_taux": {"a": 1}}', "valeur simple"),
    (b"", "JSON illisible"),
])
def test_malformed_bodies_get_400_in_french_and_change_nothing(page, body, words):
    _, _, session = page
    before, shown, result = files(session), session.scenario, session.result
    for path in ("/api/plan", "/api/enregistrer", "/api/exporter"):
        status, answer = post(page, path, body)
        assert status == 400 and words in answer["message"], answer
    assert files(session) == before and session.scenario is shown and session.result is result


def test_files_route_never_fails(page):
    port, _, _ = page
    for path in ("/fichiers/%00", "/fichiers/a%00b.toml", "/fichiers/" + "x" * 5000, "/fichiers/../../etc/passwd",
                 "/fichiers/%2e%2e/%2e%2e/etc/passwd"):
        status, text = call(port, "GET", path)
        assert status == 404 and json.loads(text)["message"] == "fichier introuvable", path


def test_long_or_control_names_are_field_errors(page):
    _, _, session = page
    before = files(session)
    status, answer = post(page, "/api/enregistrer", {"nom": "é" * 300})
    assert status == 200 and answer["erreurs"] == {"nom": "au plus 120 caractères (ici 300)"}
    status, answer = post(page, "/api/enregistrer", {"nom": "a\x00b"})
    assert status == 200 and "caractère de contrôle" in answer["erreurs"]["nom"]
    assert files(session) == before
    status, answer = post(page, "/api/enregistrer", {"nom": "x" * 120})  # the longest name: a short file name
    assert status == 200 and len(answer["lien"].rsplit("/", 1)[1]) <= 65


def test_names_with_the_same_file_name_never_replace_each_other(page):
    _, _, session = page
    first = post(page, "/api/enregistrer", {"nom": "Préfet à 25 %", "regles.prefet_taux": "25"})[1]
    second = post(page, "/api/enregistrer", {"nom": "Préfet à 25 !", "regles.prefet_taux": "24"})[1]
    assert first["lien"].endswith("/prefet_a_25.toml") and second["lien"].endswith("/prefet_a_25_2.toml")
    assert load_scenario(session.sortie / "prefet_a_25.toml").regles == {"prefet_taux": 0.25}
    assert load_scenario(session.sortie / "prefet_a_25_2.toml").nom == "Préfet à 25 !"
    again = post(page, "/api/enregistrer", {"nom": "Préfet à 25 %", "regles.prefet_taux": "26"})[1]
    assert again["lien"] == first["lien"]  # the same scenario saved again: its own file
    assert load_scenario(session.sortie / "prefet_a_25.toml").regles == {"prefet_taux": 0.26}
    one = post(page, "/api/exporter", {"nom": "Préfet à 25 %", "regles.prefet_taux": "25"})[1]
    other = post(page, "/api/exporter", {"nom": "Préfet à 25 !", "regles.prefet_taux": "24"})[1]
    assert one["message"] != other["message"]
    assert "Préfet à 25 !" in (session.sortie / "prefet_a_25_2" / "comparaison.html").read_text(encoding="utf-8")


def test_twenty_concurrent_saves_each_write_their_own_scenario(page):
    _, _, session = page
    names = [f"Parallèle {k} %" for k in range(20)]
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda n: post(page, "/api/enregistrer", {"nom": n, "regles.prefet_taux": "27"}),
                                names))
    assert all(status == 200 for status, _ in answers)
    links = [answer["lien"].removeprefix("/fichiers/") for _, answer in answers]
    assert len(set(links)) == 20
    assert [load_scenario(session.sortie / link).nom for link in links] == names
