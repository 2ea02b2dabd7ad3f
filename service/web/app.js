// Translation page of seqmt: fills the language lists from GET languages
// and sends the text to POST translate, both relative to the page's URL so
// that the page also works behind a path prefix. The whole text goes as
// one string in q: the server splits it into lines and sentences itself
// and keeps its line breaks, blank lines included, so a text of any number
// of lines is one request.
//
// The form's data-state attribute is the page's state: "loading", "ready",
// "busy", "done" or "failed".
"use strict";

(function () {
  const form = document.getElementById("translate-form");
  const source = document.getElementById("source");
  const target = document.getElementById("target");
  const text = document.getElementById("text");
  const apiKey = document.getElementById("api-key");
  const button = document.getElementById("translate");
  const status = document.getElementById("status");
  const error = document.getElementById("error");
  const result = document.getElementById("result");
  let languages = [];

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
  }

  function clearError() {
    error.textContent = "";
    error.hidden = true;
  }

  // Name of a language code in the browser's language, or the code itself.
  function languageName(code) {
    try {
      const names = new Intl.DisplayNames([navigator.language || "en"], { type: "language" });
      const name = names.of(code);
      if (name && name !== code) {
        return name + " (" + code + ")";
      }
    } catch (e) {
      // Not a valid language tag: show the code.
    }
    return code;
  }

  // The message of an error reply: the "error" field of the server's JSON,
  // or the visible text of another body, such as an HTML error page.
  async function errorMessage(response) {
    const body = await response.text();
    try {
      const parsed = JSON.parse(body);
      if (parsed && typeof parsed.error === "string") {
        return parsed.error;
      }
    } catch (e) {
      // Not JSON: fall through to the plain text.
    }
    const page = new DOMParser().parseFromString(body, "text/html");
    const plain = (page.body ? page.body.textContent : body).replace(/\s+/g, " ").trim();
    return plain.slice(0, 300) || response.statusText || "no message";
  }

  function addOption(select, code, label) {
    const option = document.createElement("option");
    option.value = code;
    option.textContent = label;
    select.appendChild(option);
  }

  function fillTargets() {
    const entry = languages.find((language) => language.code === source.value);
    target.replaceChildren();
    for (const code of entry && Array.isArray(entry.targets) ? entry.targets : []) {
      addOption(target, code, languageName(code));
    }
    target.disabled = target.options.length === 0;
    button.disabled = target.disabled;
  }

  async function loadLanguages() {
    let response;
    try {
      response = await fetch("languages", { headers: { Accept: "application/json" } });
    } catch (e) {
      throw new Error("cannot reach the server: " + e.message);
    }
    if (!response.ok) {
      throw new Error("HTTP " + response.status + ": " + (await errorMessage(response)));
    }
    const list = await response.json();
    if (!Array.isArray(list)) {
      throw new Error("the reply is not a list of languages");
    }
    languages = list.filter((language) => language && typeof language.code === "string");
    if (languages.length === 0) {
      throw new Error("the server lists no languages");
    }
    for (const language of languages) {
      addOption(source, language.code, language.name ? language.name + " (" + language.code + ")"
                                                     : languageName(language.code));
    }
    source.disabled = false;
    fillTargets();
  }

  // Sends the text of the text box as one string and shows its translation.
  async function translate(event) {
    event.preventDefault();
    clearError();
    if (text.value.trim() === "") {
      showError("Enter some text to translate.");
      return;
    }
    const request = { q: text.value, source: source.value, target: target.value, format: "text" };
    if (apiKey.value !== "") {
      request.api_key = apiKey.value;
    }

    form.dataset.state = "busy";
    button.disabled = true;
    status.textContent = "Translating…";
    try {
      const response = await fetch("translate", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(request),
      });
      if (!response.ok) {
        throw new Error("HTTP " + response.status + ": " + (await errorMessage(response)));
      }
      const reply = await response.json();
      const translated = reply && reply.translatedText;
      if (typeof translated !== "string") {
        throw new Error("the reply has no translatedText string");
      }
      result.textContent = translated;
      form.dataset.state = "done";
    } catch (e) {
      result.textContent = "";
      showError("Translation failed: " + e.message);
      form.dataset.state = "failed";
    } finally {
      status.textContent = "";
      button.disabled = false;
    }
  }

  source.addEventListener("change", fillTargets);
  form.addEventListener("submit", translate);
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      form.requestSubmit();
    }
  });

  loadLanguages().then(
    () => {
      form.dataset.state = "ready";
    },
    (e) => {
      showError("Cannot list the languages: " + e.message);
      form.dataset.state = "failed";
    }
  );
})();
