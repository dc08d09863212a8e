/** Sign in and sign up: one form, two modes. */
import { api, type Auth, RequestError } from "./api.js";
import { h } from "./dom.js";

export function authView(onSignedIn: (auth: Auth) => void, notice?: string): HTMLElement {
  let mode: "login" | "register" = "login";

  const heading = h("h2", { id: "auth-heading" });
  const username = h("input", {
    id: "auth-username",
    name: "username",
    autocomplete: "username",
    required: true,
    minlength: 3,
    maxlength: 32,
    pattern: "[A-Za-z0-9_.\\-]+",
    "aria-describedby": "auth-username-hint",
    autocapitalize: "none",
    spellcheck: "false",
  });
  const password = h("input", {
    id: "auth-password",
    name: "password",
    type: "password",
    required: true,
    minlength: 8,
    maxlength: 200,
    "aria-describedby": "auth-password-hint",
  });
  const usernameHint = h("p", { id: "auth-username-hint", class: "hint" }, "3–32 letters, digits, '_', '.' or '-'.");
  const passwordHint = h("p", { id: "auth-password-hint", class: "hint" }, "At least 8 characters.");
  const error = h("p", { class: "form-error", role: "alert", id: "auth-error" });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" });
  const switchText = h("span");
  const switchButton = h("button", { type: "button", class: "link", onclick: () => setMode(mode === "login" ? "register" : "login") });

  const form = h(
    "form",
    { class: "auth-form", "aria-labelledby": "auth-heading", novalidate: true, onsubmit: (e: Event) => (e.preventDefault(), void run()) },
    heading,
    notice ? h("p", { class: "notice", role: "status" }, notice) : null,
    h("div", { class: "field" }, h("label", { for: "auth-username" }, "Username"), username, usernameHint),
    h("div", { class: "field" }, h("label", { for: "auth-password" }, "Password"), password, passwordHint),
    error,
    submit,
    h("p", { class: "switch" }, switchText, " ", switchButton),
  );

  function setMode(m: typeof mode): void {
    mode = m;
    heading.textContent = m === "login" ? "Log in" : "Create an account";
    submit.textContent = m === "login" ? "Log in" : "Sign up";
    switchText.textContent = m === "login" ? "New here?" : "Already have an account?";
    switchButton.textContent = m === "login" ? "Create an account" : "Log in instead";
    password.setAttribute("autocomplete", m === "login" ? "current-password" : "new-password");
    usernameHint.hidden = m === "login";
    passwordHint.hidden = m === "login";
    error.textContent = "";
  }

  async function run(): Promise<void> {
    error.textContent = "";
    // The browser's own checks, but with messages in one place the screen reader hears.
    for (const input of [username, password]) {
      if (!input.checkValidity()) {
        const label = input === username ? "Username" : "Password";
        error.textContent = input.validity.valueMissing
          ? `${label} is required.`
          : input === username
            ? "Username: 3–32 letters, digits, '_', '.' or '-'."
            : "Password: at least 8 characters.";
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return;
      }
      input.removeAttribute("aria-invalid");
    }
    submit.disabled = true;
    submit.setAttribute("aria-busy", "true");
    try {
      const auth = mode === "login" ? await api.login(username.value, password.value) : await api.register(username.value, password.value);
      onSignedIn(auth);
    } catch (err) {
      error.textContent =
        err instanceof RequestError && err.code === "CONFLICT"
          ? "That username is taken. Pick another one."
          : err instanceof RequestError && err.code === "UNAUTHENTICATED"
            ? "Wrong username or password."
            : err instanceof Error
              ? err.message
              : String(err);
    } finally {
      submit.disabled = false;
      submit.removeAttribute("aria-busy");
    }
  }

  setMode("login");
  return h(
    "main",
    { class: "auth", id: "main" },
    h(
      "div",
      { class: "auth-card" },
      h("div", { class: "brand" }, h("span", { class: "logo", "aria-hidden": "true" }, "m"), h("h1", {}, "Memchat")),
      h("p", { class: "tagline" }, "Chat with people and an assistant that remembers."),
      form,
    ),
  );
}
