/** Entry point: the sign-in screen, or the chat when a token is stored. */
import "./styles.css";
import { type Auth, clearAuth, loadAuth, saveAuth } from "./api.js";
import { ChatApp } from "./app-view.js";
import { authView } from "./auth-view.js";

const root = document.getElementById("app")!;
let app: ChatApp | null = null;

function showAuth(notice?: string): void {
  app?.dispose();
  app = null;
  root.replaceChildren(authView(signedIn, notice));
  document.title = "Log in · Memchat";
  document.getElementById("auth-username")?.focus();
}

function signedIn(auth: Auth): void {
  saveAuth(auth);
  showApp(auth);
}

function showApp(auth: Auth): void {
  app?.dispose();
  app = new ChatApp(auth, (notice) => {
    clearAuth();
    showAuth(notice);
  });
  root.replaceChildren(app.el);
  document.title = "Memchat";
}

const stored = loadAuth();
if (stored) showApp(stored);
else showAuth();
