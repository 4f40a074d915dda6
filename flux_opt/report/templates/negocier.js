// The page's only script: send the form on each change, show the results or the field errors.
(function () {
  const form = document.getElementById("scenario");
  const results = document.getElementById("resultats");
  const message = document.getElementById("message");
  let timer = null, sent = 0;

  function values() {
    const out = {};
    for (const el of form.elements) { if (el.name) out[el.name] = el.value; }
    return out;
  }

  function showErrors(errors) {
    for (const el of form.querySelectorAll(".erreur")) {
      const text = errors[el.dataset.pour] || "";
      el.textContent = text;
      const input = form.elements[el.dataset.pour];
      if (input) input.classList.toggle("faux", text !== "");
    }
    document.getElementById("attente").hidden = Object.keys(errors).length === 0;
    const orphans = Object.keys(errors).filter(k => !form.querySelector('.erreur[data-pour="' + k + '"]'));
    if (orphans.length) message.textContent = orphans.map(k => k + " : " + errors[k]).join(" ; ");
  }

  async function post(url) {
    clearTimeout(timer);  // a save or an export sends the form as it is: no re-plan after it
    const id = ++sent;
    document.body.classList.add("calcul");
    try {
      // the token the server wrote in this page only: another site cannot send it
      const response = await fetch(url, {method: "POST", body: JSON.stringify(values()),
                                         headers: {"Content-Type": "application/json", "X-Jeton": form.dataset.jeton}});
      const data = await response.json();
      if (id !== sent) return null;  // a newer change is on its way: this answer is stale
      showErrors(data.erreurs || {});
      if (!response.ok) message.textContent = data.message || "Le calcul a échoué.";
      return data;
    } catch (e) {
      message.textContent = "Le serveur ne répond pas (flux-opt negocier est-il toujours lancé ?).";
      return null;
    } finally {
      if (id === sent) document.body.classList.remove("calcul");
    }
  }

  async function replan() {
    const data = await post("/api/plan");
    if (data && data.html) { results.innerHTML = data.html; message.textContent = ""; }
  }

  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(replan, 250); });
  form.addEventListener("change", () => { clearTimeout(timer); timer = setTimeout(replan, 50); });

  document.getElementById("revenir").addEventListener("click", () => {
    for (const el of form.elements) { if (el.name) el.value = el.dataset.base; }
    replan();
  });
  document.getElementById("enregistrer").addEventListener("click", async () => {
    const data = await post("/api/enregistrer");
    if (data && data.message) {
      message.innerHTML = "";
      const a = document.createElement("a");
      a.href = data.lien; a.textContent = data.message;
      message.appendChild(a);
    }
  });
  document.getElementById("exporter").addEventListener("click", async () => {
    const data = await post("/api/exporter");
    if (data && data.message) {
      message.textContent = data.message + " : ";
      for (const [name, href] of Object.entries(data.liens)) {
        const a = document.createElement("a");
        a.href = href; a.textContent = name; message.append(a, " ");
      }
    }
  });
})();
